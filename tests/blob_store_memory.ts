/**
 * Run as its own process by the BlobStore contract: streams a blob of `BLOB_MIB` MiB (64 by
 * default) into the store the JSON argument describes and prints how far the process's peak RSS
 * grew, in MiB. A process of its own, because parallel test modules share the runner's RSS.
 * @module
 */
import { createHash } from "node:crypto";
import type { BlobStore } from "../src/storage/blob_store.ts";
import type { Digest } from "../src/oci/digest.ts";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { S3BlobStore, type S3BlobStoreOptions } from "../src/storage/s3.ts";

/** Which store to measure. */
export type MemoryTarget =
  | { kind: "filesystem"; root: string }
  | { kind: "s3"; options: S3BlobStoreOptions };

const MIB = 1 << 20;
const CHUNKS = Number(Deno.env.get("BLOB_MIB") ?? 64);

function chunk(i: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(MIB);
  for (let j = 0; j < out.length; j += 4096) out[j] = (i * 31 + j) & 0xff;
  return out;
}

/** The process's peak resident set so far (Linux `VmHWM`), else its current one. */
function peakRss(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
  } catch {
    return Deno.memoryUsage().rss;
  }
}

if (import.meta.main) {
  const target = JSON.parse(Deno.args[0]) as MemoryTarget;
  const store: BlobStore = target.kind === "filesystem"
    ? await FilesystemBlobStore.open(target.root)
    : new S3BlobStore(target.options);
  const hash = createHash("sha256");
  for (let i = 0; i < CHUNKS; i++) hash.update(chunk(i));
  const digest = `sha256:${hash.digest("hex")}` as Digest;
  const id = crypto.randomUUID();
  await store.startUpload(id);
  const before = peakRss();
  let i = 0;
  await store.appendUpload(
    id,
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i === CHUNKS) return controller.close();
        controller.enqueue(chunk(i++));
      },
    }),
  );
  await store.commitUpload(id, digest);
  const peak = peakRss();
  if ((await store.rehash(digest)) !== digest) throw new Error("stored content differs");
  console.log(((peak - before) / MIB).toFixed(1));
  if (store instanceof S3BlobStore) await store.close();
}
