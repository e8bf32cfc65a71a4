/**
 * S3-specific behaviour of {@link S3BlobStore} (the shared behaviour is in
 * tests/blob_store_contract.ts): the key layout, nothing visible before commit, the session
 * state object, and 503 when the bucket cannot be reached.
 * @module
 */
import { createHash } from "node:crypto";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import { S3BlobStore } from "./s3.ts";
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { assertEquals, assertOk, assertRejects } from "../../tests/assert.ts";
import { cephMissing, startCephRgw } from "../../tests/ceph_rgw.ts";

const MIB = 1 << 20;

Deno.test("S3BlobStore: an unreachable bucket is a 503, never a half-written blob", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there now
  const store = new S3BlobStore({
    endpoint: `http://127.0.0.1:${port}`,
    bucket: "absent",
    credentials: { accessKeyId: "a", secretAccessKey: "b" },
    maxAttempts: 1,
    connectTimeoutMs: 1000,
  });
  try {
    const digest = `sha256:${"a".repeat(64)}` as Digest;
    for (
      const call of [
        () => store.stat(digest),
        () => store.read(digest),
        () => store.startUpload("x"),
      ]
    ) {
      const err = await assertRejects(call, RegistryError);
      assertEquals([err.code, err.status], ["UNAVAILABLE", 503]);
      assertOk(err.message.startsWith("object storage unavailable:"), err.message);
    }
  } finally {
    store.close();
  }
});

const missing = cephMissing();
if (missing) console.warn(`skipping "S3BlobStore on Ceph RGW": ${missing}`);

Deno.test({
  name: "S3BlobStore on Ceph RGW: layout, staging, session state",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const rgw = await startCephRgw();
    const options = { ...(await rgw.bucket("reg")), partSize: 5 * MIB };
    const store = new S3BlobStore(options);
    const Bucket = options.bucket;
    const keys = async (Prefix: string) =>
      ((await store.client.send(new ListObjectsV2Command({ Bucket, Prefix }))).Contents ?? [])
        .map((o) => o.Key!).sort();
    const multiparts = async () =>
      (await store.client.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? [];
    try {
      const data = new Uint8Array(12 * MIB + 3).map((_, i) => (i * 7) & 0xff);
      const digest = `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
      const id = "layout-1";

      await t.step(
        "state, parts and tail live in S3 until commit; blobs/ stays empty",
        async () => {
          await store.startUpload(id);
          await store.appendUpload(id, new Blob([data.subarray(0, 7 * MIB)]).stream());
          assertEquals(await keys("reg/blobs/"), []);
          assertEquals(await keys(`reg/uploads/${id}/`), [
            `reg/uploads/${id}/state.json`,
            `reg/uploads/${id}/tail-1`,
          ]);
          const state = JSON.parse(
            await (await store.client.send(
              new GetObjectCommand({ Bucket, Key: `reg/uploads/${id}/state.json` }),
            )).Body!.transformToString(),
          );
          assertEquals(state.size, 7 * MIB);
          assertEquals(state.multipart.parts.length, 1);
          assertEquals(state.tail.size, 2 * MIB);
          assertEquals((await multiparts()).length, 1);
        },
      );

      await t.step(
        "commit puts the blob at <prefix>/blobs/sha256/<hex> and cleans up",
        async () => {
          await store.appendUpload(id, new Blob([data.subarray(7 * MIB)]).stream(), {
            offset: 7 * MIB,
          });
          await store.commitUpload(id, digest);
          const hex = digest.slice("sha256:".length);
          assertEquals(await keys("reg/blobs/"), [`reg/blobs/sha256/${hex}`]);
          const head = await store.client.send(
            new HeadObjectCommand({ Bucket, Key: `reg/blobs/sha256/${hex}` }),
          );
          assertEquals(head.ContentLength, data.length);
          assertEquals(await keys("reg/uploads/"), []);
          assertEquals(await multiparts(), []);
          assertEquals(await store.listUploads(), []);
        },
      );

      await t.step(
        "the first append is hashed natively; a second re-hashes resumably; direct admits none",
        async () => {
          const other = data.subarray(0, 6 * MIB + 5);
          const sha = (bytes: Uint8Array) =>
            `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
          const stateOf = async (id: string) =>
            JSON.parse(
              await (await store.client.send(
                new GetObjectCommand({ Bucket, Key: `reg/uploads/${id}/state.json` }),
              )).Body!.transformToString(),
            );
          await store.startUpload("native-1");
          await store.appendUpload("native-1", new Blob([other]).stream());
          let state = await stateOf("native-1");
          assertEquals([`sha256:${state.sha256}`, state.hash], [sha(other), ""]);
          await store.appendUpload("native-1", new Blob(["x"]).stream(), { offset: other.length });
          state = await stateOf("native-1");
          assertEquals(state.sha256, undefined);
          assertOk(state.hash.length > 0, "a resumable state after the second append");
          const both = new Uint8Array(other.length + 1);
          both.set(other);
          both[other.length] = "x".charCodeAt(0);
          assertEquals(await store.commitUpload("native-1", sha(both)), {
            digest: sha(both),
            size: both.length,
          });
          const read = new Uint8Array(
            await new Response(await store.read(sha(both))).arrayBuffer(),
          );
          assertEquals(sha(read), sha(both));

          // A final append naming its digest writes at the blob's key: nothing may follow.
          await store.startUpload("direct-1");
          await store.appendUpload("direct-1", new Blob([other]).stream(), {
            final: true,
            digest: sha(other),
          });
          state = await stateOf("direct-1");
          assertEquals(state.multipart.key, `reg/blobs/sha256/${sha(other).slice(7)}`);
          const more = await store.appendUpload("direct-1", new Blob(["x"]).stream())
            .catch((err) => err.code);
          assertEquals(more, "BLOB_UPLOAD_INVALID");
          const wrong = await store.commitUpload("direct-1", digest).catch((err) => err.code);
          assertEquals(wrong, "DIGEST_INVALID");
          assertEquals(await store.stat(sha(other)), null);
          assertEquals(await store.commitUpload("direct-1", sha(other)), {
            digest: sha(other),
            size: other.length,
          });
          const back = new Uint8Array(
            await new Response(await store.read(sha(other))).arrayBuffer(),
          );
          assertEquals(sha(back), sha(other));
        },
      );
    } finally {
      store.close();
      await rgw.stop();
    }
  },
});
