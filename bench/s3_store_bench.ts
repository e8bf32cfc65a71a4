/**
 * Push and pull throughput of the S3 blob store against a throw-away Ceph RGW (bluestore) on
 * loopback, next to the filesystem store on the same machine. Not a test: prints MB/s.
 *
 *   ./run.sh run -A bench/s3_store_bench.ts [MiB=256] [runs=3]
 * @module
 */
import { createHash } from "node:crypto";
import type { BlobStore } from "../src/storage/blob_store.ts";
import type { Digest } from "../src/oci/digest.ts";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { S3BlobStore } from "../src/storage/s3.ts";
import { cephMissing, startCephRgw } from "../tests/ceph_rgw.ts";
import { median } from "./figures.ts";

const MIB = 1 << 20;
const size = Number(Deno.args[0] ?? 256) * MIB;
const runs = Number(Deno.args[1] ?? 3);

// One 1 MiB random chunk repeated would be deduplicated by nothing here, but vary it anyway.
const chunk = crypto.getRandomValues(new Uint8Array(65536));
const block = new Uint8Array(MIB).map((_, i) => chunk[i % 65536] ^ (i >> 16));

function body(seed: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const out = block.slice();
      out[0] = seed;
      out[1] = sent / MIB;
      sent += MIB;
      controller.enqueue(out);
    },
  });
}

function digestOf(seed: number): Digest {
  const hash = createHash("sha256");
  for (let sent = 0; sent < size; sent += MIB) {
    const out = block.slice();
    out[0] = seed;
    out[1] = sent / MIB;
    hash.update(out);
  }
  return `sha256:${hash.digest("hex")}` as Digest;
}

async function bench(name: string, store: BlobStore) {
  const push: number[] = [];
  const pull: number[] = [];
  const commits: number[] = [];
  for (let run = 0; run < runs; run++) {
    const seed = run + 1 + (name === "s3" ? 100 : 0);
    const digest = digestOf(seed);
    const id = crypto.randomUUID();
    let t = performance.now();
    await store.startUpload(id);
    await store.appendUpload(id, body(seed));
    const c = performance.now();
    await store.commitUpload(id, digest);
    commits.push(performance.now() - c);
    push.push(size / MIB / ((performance.now() - t) / 1000));
    t = performance.now();
    let got = 0;
    for await (const part of await store.read(digest)) got += part.length;
    if (got !== size) throw new Error(`read ${got} bytes, expected ${size}`);
    pull.push(size / MIB / ((performance.now() - t) / 1000));
    await store.delete(digest);
  }
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" / ");
  console.log(
    `${name.padEnd(10)} ${size / MIB} MiB  push ${median(push).toFixed(0)} MiB/s (${fmt(push)})` +
      `  pull ${median(pull).toFixed(0)} MiB/s (${fmt(pull)})` +
      `  commit ${median(commits).toFixed(0)} ms`,
  );
}

const root = await Deno.makeTempDir({ prefix: "wharf-bench-fs-" });
try {
  await bench("filesystem", await FilesystemBlobStore.open(root));
} finally {
  await Deno.remove(root, { recursive: true });
}

const missing = cephMissing();
if (missing) {
  console.log(`s3: skipped (${missing})`);
} else {
  const started = performance.now();
  const rgw = await startCephRgw({ store: "bluestore" });
  console.log(`ceph rgw (bluestore) up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const store = new S3BlobStore({ ...(await rgw.bucket("bench")) });
  try {
    await bench("s3", store);
  } finally {
    store.close();
    await rgw.stop();
  }
}
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
