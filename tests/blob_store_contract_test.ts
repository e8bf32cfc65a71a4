/**
 * Runs the BlobStore contract against every implementation: the filesystem store always, the S3
 * store against a throw-away Ceph RGW and a throw-away Swift s3api (each skipped, with the
 * reason, when its packages are not installed).
 * @module
 */
import { join } from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { S3BlobStore, type S3BlobStoreOptions } from "../src/storage/s3.ts";
import { assertEquals, assertOk } from "./assert.ts";
import type { Digest } from "../src/oci/digest.ts";
import { blobStoreContract } from "./blob_store_contract.ts";
import { cephMissing, startCephRgw } from "./ceph_rgw.ts";
import { startSwiftS3, swiftMissing } from "./swift_s3.ts";

Deno.test("BlobStore contract: filesystem", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "wharf-fs-contract-" });
  try {
    await blobStoreContract(t, {
      open: () => FilesystemBlobStore.open(root),
      close: () => {},
      memory: { kind: "filesystem", root },
      async leftovers(id) {
        const found: string[] = [];
        for await (const entry of Deno.readDir(join(root, "uploads"))) {
          if (entry.name.includes(id)) found.push(entry.name);
        }
        return found;
      },
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const missing = cephMissing();
if (missing) console.warn(`skipping "BlobStore contract: S3 (Ceph RGW)": ${missing}`);

Deno.test({
  name: "BlobStore contract: S3 (Ceph RGW)",
  ignore: missing !== null,
  // The SDK keeps pooled sockets and timers alive between requests.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const rgw = await startCephRgw();
    try {
      await s3Contract(t, await rgw.bucket("contract"));
    } finally {
      await rgw.stop();
    }
  },
});

const noSwift = swiftMissing();
if (noSwift) console.warn(`skipping "BlobStore contract: S3 (Swift s3api)": ${noSwift}`);

Deno.test({
  name: "BlobStore contract: S3 (Swift s3api)",
  ignore: noSwift !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const swift = await startSwiftS3();
    try {
      const bucket = await swift.bucket("contract");
      await s3Contract(t, bucket);
      // Every session was committed or cancelled: a segment (`<key>/<upload>/<n>`) is live only
      // as a part of a stored blob, one upload per blob. Anything else is storage no object
      // refers to (an aborted or overwritten multipart object's, on Swift).
      await t.step("no orphaned multipart segments", async () => {
        const uploads = new Map<string, Set<string>>();
        for (const name of await swift.segments(bucket.bucket)) {
          const [, key, upload] = name.match(/^(.*)\/([^/]+)\/\d+$/) ?? [];
          assertOk(key?.startsWith("contract/blobs/"), `segment of no blob: ${name}`);
          uploads.set(key, (uploads.get(key) ?? new Set()).add(upload));
        }
        const store = new S3BlobStore({ ...bucket, prefix: "contract" });
        try {
          for (const [key, ids] of uploads) {
            assertEquals(ids.size, 1, `${key}: segments of ${ids.size} uploads`);
            const digest = key.replace(/^contract\/blobs\/sha256\//, "sha256:") as Digest;
            assertOk(await store.stat(digest), `segments of ${key}, which is not stored`);
          }
        } finally {
          store.close();
        }
      });
    } finally {
      await swift.stop();
    }
  },
});

/** The contract on the S3 store over `bucket` (key prefix `contract`), 5 MiB parts. */
async function s3Contract(t: Deno.TestContext, bucket: S3BlobStoreOptions): Promise<void> {
  const options = { ...bucket, partSize: 5 * (1 << 20) };
  const probe = new S3BlobStore(options);
  try {
    await blobStoreContract(t, {
      open: () => Promise.resolve(new S3BlobStore(options)),
      close: (store) => (store as S3BlobStore).close(),
      memory: { kind: "s3", options },
      async leftovers(id) {
        const prefix = `contract/uploads/${id}/`;
        const objects = await probe.client.send(
          new ListObjectsV2Command({ Bucket: options.bucket, Prefix: prefix }),
        );
        // A direct append's multipart upload lives at the blob's key, not the session's.
        const uploads = [];
        for (const at of [prefix, "contract/blobs/"]) {
          const out = await probe.client.send(
            new ListMultipartUploadsCommand({ Bucket: options.bucket, Prefix: at }),
          );
          uploads.push(...out.Uploads ?? []);
        }
        return [
          ...(objects.Contents ?? []).map((o) => `object ${o.Key}`),
          ...uploads.map((u) => `multipart ${u.Key} ${u.UploadId}`),
        ];
      },
    });
  } finally {
    probe.close();
  }
}
