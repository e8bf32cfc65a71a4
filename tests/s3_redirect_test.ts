/**
 * `storage.redirect: true` on a real Ceph RGW and a real Swift s3api (whose tempauth checks
 * presigned SigV4 URLs too): a blob GET answers `307` to a presigned S3 URL once access is
 * checked and the blob is linked to the repository; following it gives the exact bytes (a
 * Range the exact slice); HEAD stays on Wharf; skopeo pulls through the redirects with every
 * digest intact. Each server is skipped, saying why, when it is not installed (the skopeo case
 * also when skopeo is missing).
 */
import { join } from "node:path";
import type { Digest } from "../src/oci/digest.ts";
import { S3BlobStore, type S3BlobStoreOptions } from "../src/storage/s3.ts";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "./ceph_rgw.ts";
import { skopeoMissing, startRegistry, writerAndReaderAuth } from "./harness.ts";
import { pushBlob, pushImage, randomBytes, sha256 } from "./oci_client.ts";
import { startSwiftS3, swiftMissing } from "./swift_s3.ts";

/** What the test needs of an S3 server harness. */
interface S3Server {
  bucket(prefix?: string): Promise<S3BlobStoreOptions>;
  stop(): Promise<void>;
}

const SERVERS: { label: string; skip: string | null; start: () => Promise<S3Server> }[] = [
  { label: "Ceph RGW", skip: cephMissing(), start: () => startCephRgw() },
  { label: "Swift s3api", skip: swiftMissing(), start: startSwiftS3 },
];

const basic = (user: string, password: string) => ({
  Authorization: `Basic ${btoa(`${user}:${password}`)}`,
});
const ALICE = basic("alice", "alice-pw");
const READER = basic("reader", "reader-pw");

for (const { label, skip, start } of SERVERS) {
  if (skip) console.warn(`s3_redirect_test (${label}): skipped — ${skip}`);
  Deno.test({
    name: `storage.redirect on ${label}: presigned 307 for blob GETs, exact bytes, HEAD local, ` +
      "skopeo pulls",
    ignore: skip !== null,
    fn: (t) => redirectSuite(t, start),
  });
}

/** Starts the S3 server and always stops it (and removes the temp dir), whatever fails. */
async function redirectSuite(t: Deno.TestContext, start: () => Promise<S3Server>) {
  const dir = await Deno.makeTempDir({ prefix: "wharf-redirect-" });
  try {
    const server = await start();
    try {
      await redirectSteps(t, dir, await server.bucket("wharf"));
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function redirectSteps(t: Deno.TestContext, dir: string, bucket: S3BlobStoreOptions) {
  const upstream = await startRegistry();
  const registry = await startRegistry({
    dataDir: join(dir, "data"),
    config: {
      storage: s3StorageConfig(bucket, { redirect: true, redirectExpiry: "5m" }),
      auth: await writerAndReaderAuth(dir),
      mirrors: [{
        name: "up",
        upstream: upstream.url,
        repositories: ["library/*"],
        destination: { prefix: "up/" },
        pullThrough: true,
      }],
    },
  });
  const base = registry.url;
  try {
    const image = await pushImage(base, "redirect/app", "v1", {
      layers: 2,
      layerSize: 700_000,
      headers: ALICE,
    });
    const layer = image.layers[1];
    const url = `${base}/v2/redirect/app/blobs/${layer}`;

    await t.step("GET answers 307 to a presigned URL; following it gives the bytes", async () => {
      const response = await fetch(url, { headers: READER, redirect: "manual" });
      await response.body?.cancel();
      assertEquals(response.status, 307);
      assertEquals(response.headers.get("docker-content-digest"), layer);
      const location = response.headers.get("location")!;
      assertOk(location.startsWith(`${bucket.endpoint}/${bucket.bucket}/registry/blobs/`));
      assertMatch(location, /X-Amz-Signature=[0-9a-f]{64}/);
      assertMatch(location, /X-Amz-Expires=300(&|$)/);
      const followed = await fetch(location);
      assertEquals(followed.status, 200);
      assertEquals(sha256(new Uint8Array(await followed.arrayBuffer())), layer);
      // A client that follows redirects itself (Deno's fetch drops the credentials there).
      const auto = await fetch(url, { headers: READER });
      assertEquals(sha256(new Uint8Array(await auto.arrayBuffer())), layer);
    });

    await t.step("redirectEndpoint: the URL names the clients' address for S3", async () => {
      // The same server under another host name, as a public endpoint in front of it would be.
      const publicEndpoint = bucket.endpoint!.replace("127.0.0.1", "localhost");
      const store = new S3BlobStore({
        ...bucket,
        prefix: "registry",
        redirectExpirySeconds: 60,
        redirectEndpoint: publicEndpoint,
      });
      try {
        const location = (await store.redirectUrl(layer as Digest))!;
        assertOk(location.startsWith(`${publicEndpoint}/${bucket.bucket}/registry/blobs/`));
        const followed = await fetch(location);
        assertEquals(followed.status, 200);
        assertEquals(sha256(new Uint8Array(await followed.arrayBuffer())), layer);
      } finally {
        store.close();
      }
    });

    await t.step("a Range GET redirects too and S3 serves the exact slice", async () => {
      const whole = new Uint8Array(await (await fetch(url, { headers: READER })).arrayBuffer());
      const range = { Range: "bytes=1000-654320" };
      const response = await fetch(url, { headers: { ...READER, ...range }, redirect: "manual" });
      await response.body?.cancel();
      assertEquals(response.status, 307);
      const slice = await fetch(response.headers.get("location")!, { headers: range });
      assertEquals(slice.status, 206);
      assertEquals(new Uint8Array(await slice.arrayBuffer()), whole.slice(1000, 654321));
      const followed = await fetch(url, { headers: { ...READER, ...range } });
      assertEquals(followed.status, 206);
      assertEquals(new Uint8Array(await followed.arrayBuffer()), whole.slice(1000, 654321));
    });

    await t.step("HEAD is answered by Wharf: 200, size, digest, no Location", async () => {
      const head = await fetch(url, { method: "HEAD", headers: READER, redirect: "manual" });
      assertEquals(head.status, 200);
      assertEquals(head.headers.get("location"), null);
      assertEquals(head.headers.get("content-length"), "700000");
      assertEquals(head.headers.get("docker-content-digest"), layer);
    });

    await t.step("no redirect before the access check or for unlinked blobs", async () => {
      const anonymous = await fetch(url, { redirect: "manual" });
      await anonymous.body?.cancel();
      assertEquals(anonymous.status, 401);
      assertEquals(anonymous.headers.get("location"), null);
      // Stored in the bucket, but linked to another repository only.
      const other = await pushBlob(base, "redirect/other", randomBytes(2048), ALICE);
      const unlinked = await fetch(`${base}/v2/redirect/app/blobs/${other}`, {
        headers: READER,
        redirect: "manual",
      });
      assertEquals(unlinked.status, 404);
      assertEquals((await unlinked.json()).errors[0].code, "BLOB_UNKNOWN");
      assertEquals(unlinked.headers.get("location"), null);
      const missing = await fetch(`${base}/v2/redirect/app/blobs/${sha256("absent")}`, {
        headers: READER,
        redirect: "manual",
      });
      await missing.body?.cancel();
      assertEquals(missing.status, 404);
    });

    await t.step("a pull-through miss is streamed; redirected only once stored", async () => {
      const remote = await pushImage(upstream.url, "library/base", "v1", {
        layers: 1,
        layerSize: 400_000,
      });
      const missUrl = `${base}/v2/up/library/base/blobs/${remote.layers[0]}`;
      const miss = await fetch(missUrl, { headers: READER, redirect: "manual" });
      assertEquals(miss.status, 200);
      assertEquals(sha256(new Uint8Array(await miss.arrayBuffer())), remote.layers[0]);
      let response: Response | undefined;
      for (let i = 0; i < 100; i++) {
        response = await fetch(missUrl, { headers: READER, redirect: "manual" });
        await response.body?.cancel();
        if (response.status === 307) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assertEquals(response?.status, 307);
      const stored = await fetch(response!.headers.get("location")!);
      assertEquals(sha256(new Uint8Array(await stored.arrayBuffer())), remote.layers[0]);
    });

    await t.step({
      name: "skopeo copy to dir: through the redirects keeps every digest",
      ignore: skopeoMissing() !== null,
      fn: async () => {
        const out = join(dir, "out");
        const redirects = () =>
          registry.logs().split("\n").filter((l) =>
            l.includes('"msg":"request"') && l.includes('"status":307') &&
            l.includes('"path":"/v2/redirect/app/blobs/')
          ).length;
        const before = redirects();
        const copy = await new Deno.Command("skopeo", {
          args: [
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-creds",
            "reader:reader-pw",
            `docker://${registry.host}/redirect/app:v1`,
            `dir:${out}`,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        assertOk(copy.success, new TextDecoder().decode(copy.stderr));
        assertEquals(await Deno.readFile(join(out, "manifest.json")), image.manifest);
        for (const digest of [image.config, ...image.layers]) {
          const bytes = await Deno.readFile(join(out, digest.slice("sha256:".length)));
          assertEquals(sha256(bytes), digest);
        }
        // The blobs came from S3, not through Wharf: one 307 per blob (access lines are
        // written in batches, hence the wait).
        for (let i = 0; i < 50 && redirects() - before < 3; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assertEquals(redirects() - before, 3);
      },
    });
  } catch (err) {
    console.error(`registry log:\n${registry.logs().slice(-4000)}`);
    throw err;
  } finally {
    await registry.close();
    await upstream.close();
  }
}
