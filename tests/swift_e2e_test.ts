/**
 * End to end on a second S3 implementation: a real `wharf serve` with `storage.driver: s3` on a
 * throw-away OpenStack Swift s3api (tests/swift_s3.ts). skopeo pushes an image and pulls it back
 * byte for byte, and a chunked upload crossing multipart part boundaries commits the exact bytes;
 * afterwards the bucket holds the blobs and no session, part or segment. One Swift for the file
 * (it takes 5–9 s to start). Skipped, saying why, when Swift (or, for its step, skopeo) is missing.
 * @module
 */
import { join } from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { assertEquals, assertOk } from "./assert.ts";
import { skopeoMissing, startRegistry } from "./harness.ts";
import { randomBytes, sha256 } from "./oci_client.ts";
import { blobPath, initLayout, readTag, tagLayout, writeImage } from "./oci_layout.ts";
import { s3StorageConfig, startSwiftS3, swiftMissing } from "./swift_s3.ts";

const MIB = 1 << 20;
const skip = swiftMissing();
if (skip) console.warn(`swift_e2e_test: skipped — ${skip}`);

async function skopeo(...args: string[]): Promise<void> {
  const out = await new Deno.Command("skopeo", {
    args: ["--insecure-policy", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(out.success, `skopeo ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test({
  name: "Wharf on Swift s3api: skopeo push/pull byte-identical, chunked upload across parts",
  ignore: skip !== null,
  // The SDK client of the bucket checks keeps pooled sockets alive between requests.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "wharf-swift-e2e-" });
    try {
      const swift = await startSwiftS3();
      try {
        const bucket = await swift.bucket("e2e");
        // 5 MiB parts: a 12 MiB layer and the chunked upload below span several parts.
        const registry = await startRegistry({
          config: { storage: s3StorageConfig(bucket, { partSize: "5MiB" }) },
        });
        const s3 = new S3Client({
          endpoint: bucket.endpoint,
          region: bucket.region,
          credentials: bucket.credentials,
          forcePathStyle: true,
        });
        const keys = async (prefix: string) =>
          ((await s3.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: prefix })))
            .Contents ?? []).map((o) => o.Key!);
        try {
          await t.step({
            name: "skopeo pushes an OCI image and pulls it back byte-identical",
            ignore: skopeoMissing() !== null,
            fn: async () => {
              const src = join(dir, "src");
              const out = join(dir, "out");
              await initLayout(src);
              const image = await writeImage(src, { layerSizes: [3_000, 300_000, 12 * MIB] });
              await tagLayout(src, "v1", image.descriptor);
              const ref = `docker://${registry.host}/swift/app:v1`;
              await skopeo(
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
                `oci:${src}:v1`,
                ref,
              );
              await skopeo(
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--preserve-digests",
                ref,
                `oci:${out}:v1`,
              );
              assertEquals((await readTag(out, "v1"))?.digest, image.descriptor.digest);
              assertEquals(
                await Deno.readFile(blobPath(out, image.descriptor.digest)),
                image.manifest,
              );
              for (const blob of image.blobs) {
                assertEquals(
                  await Deno.readFile(blobPath(out, blob.digest)),
                  await Deno.readFile(blobPath(src, blob.digest)),
                  `blob ${blob.digest}`,
                );
              }
              // The bytes live in Swift, content-addressed under the configured prefix.
              const stored = await keys("registry/blobs/sha256/");
              for (const blob of image.blobs) {
                assertOk(stored.includes(`registry/blobs/sha256/${blob.digest.slice(7)}`));
              }
            },
          });

          await t.step(
            "a chunked upload across part boundaries commits the exact bytes",
            async () => {
              const chunks = [3 * MIB, 4 * MIB + 3, 1024, 6 * MIB].map((n) => randomBytes(n));
              const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
              chunks.reduce((at, c) => (whole.set(c, at), at + c.length), 0);
              const digest = sha256(whole);
              const started = await fetch(`${registry.url}/v2/swift/chunked/blobs/uploads/`, {
                method: "POST",
              });
              await started.body?.cancel();
              assertEquals(started.status, 202);
              let location = new URL(started.headers.get("location")!, registry.url);
              let offset = 0;
              for (const chunk of chunks.slice(0, -1)) {
                // A chunk that does not start where the upload ends is refused, nothing changes.
                const gap = await fetch(location, {
                  method: "PATCH",
                  headers: { "Content-Range": `${offset + 1}-${offset + chunk.length}` },
                  body: chunk,
                });
                await gap.body?.cancel();
                assertEquals(gap.status, 416);
                const patch = await fetch(location, {
                  method: "PATCH",
                  headers: { "Content-Range": `${offset}-${offset + chunk.length - 1}` },
                  body: chunk,
                });
                await patch.body?.cancel();
                assertEquals(patch.status, 202);
                offset += chunk.length;
                assertEquals(patch.headers.get("range"), `0-${offset - 1}`);
                location = new URL(patch.headers.get("location")!, registry.url);
              }
              const last = chunks[chunks.length - 1];
              location.searchParams.set("digest", digest);
              const put = await fetch(location, {
                method: "PUT",
                headers: { "Content-Range": `${offset}-${offset + last.length - 1}` },
                body: last,
              });
              assertEquals(put.status, 201, await put.text());
              const url = `${registry.url}/v2/swift/chunked/blobs/${digest}`;
              const back = new Uint8Array(await (await fetch(url)).arrayBuffer());
              assertEquals(back, whole);
              const range = await fetch(url, {
                headers: { Range: `bytes=${5 * MIB - 7}-${9 * MIB}` },
              });
              assertEquals(range.status, 206);
              assertEquals(
                new Uint8Array(await range.arrayBuffer()),
                whole.subarray(5 * MIB - 7, 9 * MIB + 1),
              );
            },
          );

          await t.step(
            "nothing is left behind: no session, multipart upload or segment",
            async () => {
              assertEquals(await keys("registry/uploads/"), []);
              const uploads = await s3.send(
                new ListMultipartUploadsCommand({ Bucket: bucket.bucket }),
              );
              assertEquals(uploads.Uploads ?? [], []);
              assertEquals(await swift.segments(bucket.bucket), []);
            },
          );
        } catch (err) {
          console.error(`registry log:\n${registry.logs().slice(-4000)}`);
          throw err;
        } finally {
          s3.destroy();
          await registry.close();
        }
      } finally {
        await swift.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
