/**
 * The behaviour every {@link BlobStore} must show, as test steps any implementation runs
 * (`tests/blob_store_contract_test.ts` runs it against the filesystem and the S3 store).
 * @module
 */
import { createHash } from "node:crypto";
import type { BlobStore } from "../src/storage/blob_store.ts";
import type { Digest } from "../src/oci/digest.ts";
import { RegistryError } from "../src/oci/errors.ts";
import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import type { MemoryTarget } from "./blob_store_memory.ts";

const MIB = 1 << 20;

/** How the contract reaches one implementation. */
export interface ContractTarget {
  /** A store over the shared backing storage (a new instance stands for another process). */
  open(): Promise<BlobStore>;
  /** Drops an instance (closes its clients). */
  close(store: BlobStore): Promise<void> | void;
  /** Session leftovers in the backing storage (files, objects, multipart uploads), for a cancelled id. */
  leftovers(id: string): Promise<string[]>;
  /** The same store, described for the memory measurement in a process of its own. */
  memory: MemoryTarget;
}

/** Registers the contract's steps on `t`. */
export async function blobStoreContract(t: Deno.TestContext, target: ContractTarget) {
  const store = await target.open();
  try {
    await t.step("monolithic upload, stat, read, ranges, missing blob", async () => {
      const data = bytes(3 * MIB + 17, 1);
      const digest = sha256(data);
      assertEquals(await store.stat(digest), null);
      await assertCode(() => store.read(digest), "BLOB_UNKNOWN");
      await upload(store, [data], digest);
      assertEquals(await store.stat(digest), { digest, size: data.length });
      assertEquals(await readAll(await store.read(digest)), data);
      for (const [start, end] of [[0, 0], [5, 1000], [MIB - 1, 2 * MIB], [0, data.length - 1]]) {
        const got = await readAll(await store.read(digest, { start, end }));
        assertEquals(got, data.subarray(start, end + 1), `range ${start}-${end}`);
      }
      assertEquals(await store.rehash(digest), digest);
    });

    await t.step("chunked appends with offsets across part boundaries; 416 on a gap", async () => {
      const chunks = [bytes(3 * MIB, 2), bytes(4 * MIB + 3, 3), bytes(1024, 4), bytes(6 * MIB, 5)];
      const data = concat(chunks);
      const digest = sha256(data);
      const id = newId();
      await store.startUpload(id);
      let offset = 0;
      for (const chunk of chunks) {
        const err = await assertCode(
          () => store.appendUpload(id, stream([chunk]), { offset: offset + 1 }),
          "RANGE_INVALID",
        );
        assertEquals(err.status, 416);
        assertEquals(err.headers.Range, `0-${Math.max(offset - 1, 0)}`);
        const state = await store.appendUpload(id, stream([chunk]), {
          offset,
          expectedLength: chunk.length,
        });
        offset += chunk.length;
        assertEquals(state.size, offset);
        assertEquals((await store.uploadState(id)).size, offset);
      }
      assertEquals(await store.commitUpload(id, digest), { digest, size: data.length });
      assertEquals(await readAll(await store.read(digest)), data);
      const cross = await readAll(await store.read(digest, { start: 5 * MIB - 10, end: 7 * MIB }));
      assertEquals(cross, data.subarray(5 * MIB - 10, 7 * MIB + 1));
      await assertCode(() => store.uploadState(id), "BLOB_UPLOAD_UNKNOWN");
    });

    await t.step("a failed append leaves the session as it was", async () => {
      const first = bytes(2 * MIB, 6);
      const second = bytes(9 * MIB, 7);
      const id = newId();
      await store.startUpload(id);
      await store.appendUpload(id, stream([first]));
      // The body breaks after 7 MiB (past a part boundary).
      await assertRejects(() => store.appendUpload(id, failing(second, 7 * MIB)), Error);
      assertEquals((await store.uploadState(id)).size, first.length);
      await assertCode(
        () => store.appendUpload(id, stream([second]), { expectedLength: second.length + 1 }),
        "SIZE_INVALID",
      );
      assertEquals((await store.uploadState(id)).size, first.length);
      const tooBig = await assertCode(
        () => store.appendUpload(id, stream([second]), { limit: first.length + MIB }),
        "SIZE_INVALID",
      );
      assertEquals(tooBig.status, 413);
      assertEquals((await store.uploadState(id)).size, first.length);
      await store.appendUpload(id, stream([second]), { offset: first.length });
      const data = concat([first, second]);
      assertEquals(await store.commitUpload(id, sha256(data)), {
        digest: sha256(data),
        size: data.length,
      });
      assertEquals(await readAll(await store.read(sha256(data))), data);
    });

    await t.step("digest mismatch keeps the session; sha512; idempotent commit", async () => {
      const data = bytes(6 * MIB + 5, 8);
      const id = newId();
      await store.startUpload(id);
      await store.appendUpload(id, stream([data]));
      const wrong = sha256(bytes(10, 9));
      await assertCode(() => store.commitUpload(id, wrong), "DIGEST_INVALID");
      assertEquals(await store.stat(wrong), null);
      assertEquals((await store.uploadState(id)).size, data.length);
      // A wrong sha512 needs the whole content re-read: the session must survive that too.
      const wrong512 = `sha512:${"0".repeat(128)}` as Digest;
      await assertCode(() => store.commitUpload(id, wrong512), "DIGEST_INVALID");
      assertEquals((await store.uploadState(id)).size, data.length);
      const more = bytes(1000, 15);
      await store.appendUpload(id, stream([more]), { offset: data.length });
      const all = concat([data, more]);
      assertEquals(await store.commitUpload(id, sha256(all)), {
        digest: sha256(all),
        size: all.length,
      });
      await store.startUpload(id);
      await store.appendUpload(id, stream([data]));
      const sha512 = `sha512:${createHash("sha512").update(data).digest("hex")}` as Digest;
      assertEquals(await store.commitUpload(id, sha512), { digest: sha512, size: data.length });
      assertEquals(await readAll(await store.read(sha512)), data);
      assertEquals(await store.rehash(sha512), sha512);
      // The same content again under sha256, twice: stored once, both commits succeed.
      await upload(store, [data], sha256(data));
      await upload(store, [data.subarray(0, MIB), data.subarray(MIB)], sha256(data));
      assertEquals(await store.stat(sha256(data)), { digest: sha256(data), size: data.length });
    });

    await t.step("empty blob", async () => {
      const empty = sha256(new Uint8Array(0));
      await upload(store, [], empty);
      assertEquals(await store.stat(empty), { digest: empty, size: 0 });
      assertEquals((await readAll(await store.read(empty))).length, 0);
    });

    await t.step(
      "a session continues on a second instance after the first is dropped",
      async () => {
        const a = await target.open();
        const id = newId();
        const one = bytes(7 * MIB + 1, 10);
        const two = bytes(3 * MIB, 11);
        await a.startUpload(id);
        await a.appendUpload(id, stream([one]));
        await target.close(a);
        const b = await target.open();
        try {
          assertEquals((await b.uploadState(id)).size, one.length);
          assertOk((await b.listUploads()).includes(id));
          await b.appendUpload(id, stream([two]), { offset: one.length });
          const data = concat([one, two]);
          await b.commitUpload(id, sha256(data));
          assertEquals(await readAll(await store.read(sha256(data))), data);
        } finally {
          await target.close(b);
        }
      },
    );

    await t.step("cancel leaves no visible blob and nothing behind", async () => {
      const data = bytes(8 * MIB, 12);
      const id = newId();
      await store.startUpload(id);
      await store.appendUpload(id, stream([data]));
      await assertRejects(() => store.appendUpload(id, failing(data, 6 * MIB)), Error);
      assertOk((await store.listUploads()).includes(id));
      await store.cancelUpload(id);
      await store.cancelUpload(id); // absent sessions are ignored
      assertEquals(await store.stat(sha256(data)), null);
      assertOk(!(await store.listUploads()).includes(id));
      assertEquals(await target.leftovers(id), []);
      await assertCode(() => store.uploadState(id), "BLOB_UPLOAD_UNKNOWN");
    });

    await t.step("a whole blob appended with its digest: invisible until verified", async () => {
      const data = bytes(12 * MIB + 3, 16);
      const digest = sha256(data);
      const id = newId();
      await store.startUpload(id);
      await store.appendUpload(id, stream([data]), { final: true, digest });
      assertEquals(await store.stat(digest), null, "visible before the commit");
      assertEquals(await store.commitUpload(id, digest), { digest, size: data.length });
      assertEquals(await readAll(await store.read(digest)), data);
      assertEquals(await target.leftovers(id), []);
      // The same blob again while it is stored: the commit keeps the stored one.
      const again = newId();
      await store.startUpload(again);
      await store.appendUpload(again, stream([data]), { final: true, digest });
      assertEquals(await store.commitUpload(again, digest), { digest, size: data.length });
      assertEquals(await target.leftovers(again), []);
      assertEquals(
        await readAll(await store.read(digest, { start: 0, end: 9 })),
        data.slice(0, 10),
      );

      // Content that is not what the digest names: refused, nothing visible, nothing left.
      const other = bytes(9 * MIB, 17);
      const claimed = sha256(bytes(10, 18));
      const wrong = newId();
      await store.startUpload(wrong);
      await store.appendUpload(wrong, stream([other]), { final: true, digest: claimed });
      await assertCode(() => store.commitUpload(wrong, claimed), "DIGEST_INVALID");
      assertEquals(await store.stat(claimed), null);
      await store.cancelUpload(wrong);
      assertEquals(await target.leftovers(wrong), []);

      // A body that breaks mid-way: nothing visible, the session as it was.
      const broken = newId();
      await store.startUpload(broken);
      await assertRejects(
        () =>
          store.appendUpload(broken, failing(other, 7 * MIB), {
            final: true,
            digest: sha256(other),
          }),
        Error,
      );
      assertEquals(await store.stat(sha256(other)), null);
      assertEquals((await store.uploadState(broken)).size, 0);
      await store.cancelUpload(broken);
      assertEquals(await target.leftovers(broken), []);
    });

    await t.step("a process dying mid-append leaves nothing a cancel cannot remove", async () => {
      // One instance's append stalls after 7 MiB and is never finished (its process "died");
      // another instance cancels the session. What the first had started must go too.
      const data = bytes(9 * MIB, 19);
      const digest = sha256(data);
      const a = await target.open();
      const b = await target.open();
      const id = newId();
      try {
        await a.startUpload(id);
        let sent = 0;
        let stop!: (err: Error) => void;
        const stalled = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= 7 * MIB) {
              return new Promise((_, reject) => {
                stop = (err) => {
                  controller.error(err);
                  reject(err);
                };
              });
            }
            controller.enqueue(data.subarray(sent, sent + MIB));
            sent += MIB;
          },
        });
        const dying = a.appendUpload(id, stalled, { final: true, digest }).catch((e) => e);
        while (sent < 7 * MIB) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 500)); // the first part is on its way
        await b.cancelUpload(id);
        assertEquals(await target.leftovers(id), []);
        stop(new Error("the process died"));
        assertOk((await dying) instanceof Error);
        assertEquals(await store.stat(digest), null);
        assertEquals(await target.leftovers(id), []);
      } finally {
        await target.close(a);
        await target.close(b);
      }
    });

    await t.step("listBlobs, delete, quarantine", async () => {
      const a = bytes(1000, 13);
      const b = bytes(2000, 14);
      await upload(store, [a], sha256(a));
      await upload(store, [b], sha256(b));
      const listed = new Map<string, number>();
      for await (const blob of store.listBlobs()) {
        listed.set(blob.digest, blob.size);
        assertOk(blob.modifiedAt > Date.now() - 3600_000, "modifiedAt is recent");
      }
      assertEquals(listed.get(sha256(a)), 1000);
      assertEquals(listed.get(sha256(b)), 2000);
      await store.delete(sha256(a));
      await store.delete(sha256(a));
      assertEquals(await store.stat(sha256(a)), null);
      await store.quarantine(sha256(b));
      assertEquals(await store.stat(sha256(b)), null);
      for await (const blob of store.listBlobs()) {
        assertOk(blob.digest !== sha256(a) && blob.digest !== sha256(b));
      }
    });

    // 256 MiB through a store whose memory stays within half of it: bounded, whatever V8's
    // collector timing adds (measured 46–86 MiB on S3 with 5 MiB parts, 2 MiB on disk).
    await t.step("a 256 MiB streamed upload keeps memory bounded", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./blob_store_memory.ts", import.meta.url).pathname,
          JSON.stringify(target.memory),
        ],
        env: { BLOB_MIB: "256" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertOk(out.success, new TextDecoder().decode(out.stderr));
      const grew = Number(new TextDecoder().decode(out.stdout).trim());
      console.log(`    256 MiB upload: RSS grew ${grew.toFixed(1)} MiB`);
      assertOk(grew < 128, `memory grew ${grew.toFixed(1)} MiB for a 256 MiB blob`);
    });
  } finally {
    await target.close(store);
  }
}

async function upload(store: BlobStore, chunks: Uint8Array[], digest: Digest): Promise<void> {
  const id = newId();
  await store.startUpload(id);
  for (const chunk of chunks) await store.appendUpload(id, stream([chunk]));
  await store.commitUpload(id, digest);
}

async function assertCode(fn: () => Promise<unknown>, code: string): Promise<RegistryError> {
  const err = await assertRejects(fn, RegistryError);
  assertEquals(err.code, code, err.message);
  return err;
}

function newId(): string {
  return crypto.randomUUID();
}

/** Deterministic bytes: a seeded xorshift, so every chunk differs. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >> 2);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = i & 0xff;
  return out;
}

function sha256(data: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Streams `chunks` in 1 MiB pieces. */
function stream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  const pieces = chunks.flatMap((c) => {
    const out = [];
    for (let i = 0; i < c.length; i += MIB) out.push(c.subarray(i, i + MIB));
    return out;
  });
  return new ReadableStream({
    pull(controller) {
      const next = pieces.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

/** Streams `data` but errors after `at` bytes (a dropped connection). */
function failing(data: Uint8Array, at: number): ReadableStream<Uint8Array> {
  const reader = stream([data.subarray(0, at)]).getReader();
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.error(new Error("connection reset"));
      else controller.enqueue(value);
    },
  });
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer());
}
