/**
 * Several `wharf serve` processes on one PostgreSQL database and one S3 bucket (Ceph RGW), both
 * real and started by the test: what one process pushes, the others serve byte for byte, and a
 * chunked upload moves between processes from one PATCH to the next. Skipped, saying why, when
 * PostgreSQL or Ceph is not installed.
 */
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { cephMissing, startCephRgw } from "./ceph_rgw.ts";
import { startRegistry, type TestRegistry } from "./harness.ts";
import { pushImage, randomBytes, sha256 } from "./oci_client.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";

const skip = postgresUnavailableReason() ?? cephMissing();
if (skip) console.warn(`scaleout_test: skipped — ${skip}`);

Deno.test({
  name: "scale-out: three processes on PostgreSQL + S3 serve one registry",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wharf-scaleout-" });
    const postgres = await startPostgres();
    const rgw = await startCephRgw();
    const processes: TestRegistry[] = [];
    try {
      const bucket = await rgw.bucket("wharf");
      const config = {
        storage: {
          driver: "s3",
          endpoint: bucket.endpoint,
          bucket: bucket.bucket,
          region: bucket.region,
          prefix: "registry",
          credentials: {
            accessKeyId: bucket.credentials!.accessKeyId,
            secretAccessKey: bucket.credentials!.secretAccessKey,
          },
        },
        metadata: { driver: "postgres", url: postgres.url },
      };
      for (let i = 0; i < 3; i++) {
        processes.push(await startRegistry({ dataDir: join(dir, `p${i}`), config }));
      }
      const [a, b, c] = processes;

      const image = await pushImage(a.url, "scale/app", "v1", { layers: 2, layerSize: 300_000 });
      for (const other of [b, c]) {
        const got = await fetch(`${other.url}/v2/scale/app/manifests/v1`);
        assertEquals(new Uint8Array(await got.arrayBuffer()), image.manifest);
        for (const layer of image.layers) {
          const blob = await fetch(`${other.url}/v2/scale/app/blobs/${layer}`);
          assertEquals(sha256(new Uint8Array(await blob.arrayBuffer())), layer);
        }
      }

      // A chunked upload whose requests land on three different processes.
      const first = randomBytes(6 << 20);
      const second = randomBytes(3 << 20);
      const digest = sha256(new Uint8Array([...first, ...second]));
      const start = await fetch(`${a.url}/v2/scale/chunked/blobs/uploads/`, { method: "POST" });
      await start.body?.cancel();
      const location = start.headers.get("location")!;
      const patch = await fetch(new URL(location, b.url), {
        method: "PATCH",
        headers: { "Content-Range": `0-${first.length - 1}` },
        body: first,
      });
      await patch.body?.cancel();
      assertEquals(patch.status, 202);
      const status = await fetch(new URL(location, c.url));
      await status.body?.cancel();
      assertEquals(status.headers.get("range"), `0-${first.length - 1}`);
      const put = new URL(location, c.url);
      put.searchParams.set("digest", digest);
      const done = await fetch(put, {
        method: "PUT",
        headers: { "Content-Range": `${first.length}-${first.length + second.length - 1}` },
        body: second,
      });
      await done.body?.cancel();
      assertEquals(done.status, 201);
      const back = await fetch(`${a.url}/v2/scale/chunked/blobs/${digest}`);
      assertEquals(sha256(new Uint8Array(await back.arrayBuffer())), digest);

      // A tag moved on one process is seen by the others at once.
      const next = await pushImage(b.url, "scale/app", "v1", { layers: 1 });
      const seen = await fetch(`${c.url}/v2/scale/app/manifests/v1`, { method: "HEAD" });
      await seen.body?.cancel();
      assertEquals(seen.headers.get("docker-content-digest"), next.digest);
    } finally {
      for (const process of processes) await process.close({ keepData: true });
      await rgw.stop();
      await postgres.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
