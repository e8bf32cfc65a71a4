/**
 * Several `wharf serve` processes on one PostgreSQL database and one S3 bucket (Ceph RGW), both
 * real and started by the test: what one process pushes, the others serve byte for byte, and a
 * chunked upload moves between processes from one PATCH to the next. Skipped, saying why, when
 * PostgreSQL or Ceph is not installed.
 */
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "./ceph_rgw.ts";
import { startRegistry, type TestRegistry, writeHtpasswd } from "./harness.ts";
import { pushImage, randomBytes, sha256 } from "./oci_client.ts";
import { blobPath, initLayout, tagLayout, writeImage } from "./oci_layout.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";

const SKOPEO = Deno.env.get("SKOPEO") ?? "skopeo";
const SKOPEO_MISSING = (() => {
  try {
    const out = new Deno.Command(SKOPEO, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? null : `"${SKOPEO} --version" failed`;
  } catch {
    return `"${SKOPEO}" not found (apt-get install skopeo, or set SKOPEO)`;
  }
})();

/** Runs skopeo with the trust policy disabled (the test pushes an unsigned local image). */
async function skopeo(...args: string[]): Promise<void> {
  const out = await new Deno.Command(SKOPEO, {
    args: ["--insecure-policy", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`skopeo ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

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
        storage: s3StorageConfig(bucket),
        metadata: { driver: "postgres", url: postgres.url },
      };
      for (let i = 0; i < 3; i++) {
        processes.push(await startRegistry({ dataDir: join(dir, `p${i}`), config }));
      }
      const [a, b, c] = processes;

      if (SKOPEO_MISSING) {
        console.warn(`scaleout_test: skopeo step skipped — ${SKOPEO_MISSING}`);
      } else {
        // skopeo pushes through one process; pulls through the others are byte-identical.
        const src = join(dir, "layout");
        await initLayout(src);
        const layout = await writeImage(src, { layerSizes: [1024, 300_000, 7 << 20] });
        await tagLayout(src, "v1", layout.descriptor);
        await skopeo(
          "copy",
          "--dest-tls-verify=false",
          `oci:${src}:v1`,
          `docker://${a.host}/scale/sk:v1`,
        );
        for (const other of [b, c]) {
          const out = join(dir, `pulled-${other.host.replace(":", "-")}`);
          await skopeo(
            "copy",
            "--src-tls-verify=false",
            `docker://${other.host}/scale/sk:v1`,
            `dir:${out}`,
          );
          assertEquals(await Deno.readFile(join(out, "manifest.json")), layout.manifest);
          for (const blob of layout.blobs) {
            assertEquals(
              await Deno.readFile(join(out, blob.digest.slice("sha256:".length))),
              await Deno.readFile(blobPath(src, blob.digest)),
            );
          }
        }
      }

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

Deno.test({
  name: "scale-out: shared token key and login limits, GC once per tick, SIGKILL mid-push",
  ignore: skip !== null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "wharf-scaleout-" });
    const postgres = await startPostgres();
    const rgw = await startCephRgw();
    const processes: TestRegistry[] = [];
    try {
      const config = {
        storage: s3StorageConfig(await rgw.bucket("wharf")),
        metadata: { driver: "postgres", url: postgres.url },
        auth: {
          htpasswd: await writeHtpasswd(dir, { alice: "alice-pw" }),
          rules: [{ repositories: ["**"], users: ["alice"], actions: ["*"] }],
        },
        // Every second on every process; the default grace period keeps pushes safe.
        gc: { schedule: "* * * * * *" },
      };
      for (let i = 0; i < 3; i++) {
        processes.push(await startRegistry({ dataDir: join(dir, `p${i}`), config }));
      }
      const [a, b, c] = processes;
      const basic = (password: string) => ({
        Authorization: `Basic ${btoa(`alice:${password}`)}`,
      });
      const tokenFrom = async (registry: TestRegistry, password = "alice-pw") => {
        const started = performance.now();
        const res = await fetch(
          `${registry.url}/token?service=wharf&scope=repository:scale/app:pull,push`,
          { headers: basic(password) },
        );
        const body = await res.json();
        return { status: res.status, token: body.token as string, ms: performance.now() - started };
      };

      let image!: Awaited<ReturnType<typeof pushImage>>;
      await t.step("a token issued by one process is accepted by the others", async () => {
        const { token } = await tokenFrom(a);
        const bearer = { Authorization: `Bearer ${token}` };
        image = await pushImage(b.url, "scale/app", "v1", { headers: bearer });
        const got = await fetch(`${c.url}/v2/scale/app/manifests/v1`, { headers: bearer });
        assertEquals(new Uint8Array(await got.arrayBuffer()), image.manifest);
        const anonymous = await fetch(`${c.url}/v2/scale/app/manifests/v1`);
        await anonymous.body?.cancel();
        assertEquals(anonymous.status, 401);
      });

      await t.step("failed logins on some processes slow down the next", async () => {
        // Three failures are free, the fourth makes the next answer wait 250 ms, then 500, 1000.
        for (const registry of [a, b, a, b, a]) {
          assertEquals((await tokenFrom(registry, "wrong")).status, 401);
        }
        const slowed = await tokenFrom(c, "wrong");
        assertEquals(slowed.status, 401);
        if (slowed.ms < 900) throw new Error(`sixth failure answered in ${slowed.ms} ms`);
        const good = await tokenFrom(b); // waits too, then succeeds and clears the count
        assertEquals(good.status, 200);
        const after = await tokenFrom(c);
        if (after.ms > 500) throw new Error(`login after success took ${after.ms} ms`);
      });

      await t.step("scheduled GC runs once per tick across the processes", async () => {
        await new Promise((resolve) => setTimeout(resolve, 4_000));
        const ticks = processes.flatMap((p) =>
          p.logs().split("\n").filter((line) => line.includes('"gc finished"'))
            .map((line) => JSON.parse(line).tick as number)
        );
        if (ticks.length < 3) throw new Error(`only ${ticks.length} GC runs in 4 s`);
        assertEquals(new Set(ticks).size, ticks.length);
      });

      await t.step("SIGKILL of one process mid-push loses nothing acknowledged", async () => {
        const { token } = await tokenFrom(a);
        const bearer = { Authorization: `Bearer ${token}` };
        // Acknowledged on A before the kill: a chunk of a session and a whole image.
        const first = randomBytes(6 << 20);
        const second = randomBytes(2 << 20);
        const start = await fetch(`${a.url}/v2/scale/app/blobs/uploads/`, {
          method: "POST",
          headers: bearer,
        });
        await start.body?.cancel();
        const session = start.headers.get("location")!;
        const patch = await fetch(new URL(session, a.url), {
          method: "PATCH",
          headers: { ...bearer, "Content-Range": `0-${first.length - 1}` },
          body: first,
        });
        await patch.body?.cancel();
        assertEquals(patch.status, 202);
        const acknowledged = await pushImage(a.url, "scale/app", "v2", {
          headers: bearer,
          layerSize: 1 << 20,
        });

        // A monolithic upload to A that is still streaming when A is killed.
        const doomed = randomBytes(24 << 20);
        const doomedDigest = sha256(doomed);
        let sent = 0;
        let killed!: () => void;
        const killPoint = new Promise<void>((resolve) => killed = resolve);
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent >= doomed.length) return controller.close();
            if (sent >= 8 << 20) killed();
            await new Promise((resolve) => setTimeout(resolve, 20));
            controller.enqueue(doomed.slice(sent, sent + (1 << 20)));
            sent += 1 << 20;
          },
        });
        const post = await fetch(`${a.url}/v2/scale/app/blobs/uploads/`, {
          method: "POST",
          headers: bearer,
        });
        await post.body?.cancel();
        const put = new URL(post.headers.get("location")!, a.url);
        put.searchParams.set("digest", doomedDigest);
        const upload = fetch(put, { method: "PUT", headers: bearer, body }).then(
          (res) => res.status,
          () => "failed",
        );
        await killPoint;
        a.process.kill("SIGKILL");
        assertEquals(await upload, "failed");
        await a.process.status;

        // The others serve everything A acknowledged, and nothing of the killed upload.
        for (const other of [b, c]) {
          const got = await fetch(`${other.url}/v2/scale/app/manifests/v2`, { headers: bearer });
          assertEquals(new Uint8Array(await got.arrayBuffer()), acknowledged.manifest);
          for (const layer of acknowledged.layers) {
            const blob = await fetch(`${other.url}/v2/scale/app/blobs/${layer}`, {
              headers: bearer,
            });
            assertEquals(sha256(new Uint8Array(await blob.arrayBuffer())), layer);
          }
          const missing = await fetch(`${other.url}/v2/scale/app/blobs/${doomedDigest}`, {
            method: "HEAD",
            headers: bearer,
          });
          await missing.body?.cancel();
          assertEquals(missing.status, 404);
        }
        // The session A acknowledged a chunk of goes on and completes on C.
        const finish = new URL(session, c.url);
        finish.searchParams.set("digest", sha256(new Uint8Array([...first, ...second])));
        const done = await fetch(finish, {
          method: "PUT",
          headers: {
            ...bearer,
            "Content-Range": `${first.length}-${first.length + 2 * (1 << 20) - 1}`,
          },
          body: second,
        });
        await done.body?.cancel();
        assertEquals(done.status, 201);
        const whole = await fetch(
          `${b.url}/v2/scale/app/blobs/${sha256(new Uint8Array([...first, ...second]))}`,
          {
            headers: bearer,
          },
        );
        assertEquals(
          sha256(new Uint8Array(await whole.arrayBuffer())),
          sha256(new Uint8Array([...first, ...second])),
        );
      });
    } finally {
      for (const process of processes) await process.close({ keepData: true });
      await rgw.stop();
      await postgres.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
