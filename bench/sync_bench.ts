/**
 * Mirroring throughput: `SYNC_BENCH_IMAGES` images (50) × `SYNC_BENCH_LAYERS` layers (5) of
 * `SYNC_BENCH_LAYER_KIB` KiB (256) each, pushed to a local upstream Wharf process, then
 * mirrored by
 * - Wharf's sync engine (`wharf sync run` as a process, into a fresh data directory), cold and
 *   again warm (incremental: nothing changed, one HEAD per tag);
 * - `skopeo sync` (Debian's `/usr/bin/skopeo`, or `$SKOPEO`) of the same repository into a
 *   fresh Wharf process, when installed.
 * Prints images/s and MB/s (MB = 10^6 bytes of layers and configs). Run with
 * `./run.sh task sync-bench`.
 * @module
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { startRegistry } from "../tests/harness.ts";
import { clientFor, pushTestImage } from "../tests/sync_fixtures.ts";

const IMAGES = envInt("SYNC_BENCH_IMAGES", 50);
const LAYERS = envInt("SYNC_BENCH_LAYERS", 5);
const LAYER_KIB = envInt("SYNC_BENCH_LAYER_KIB", 256);
const SKOPEO = Deno.env.get("SKOPEO") ?? "/usr/bin/skopeo";
const MAIN = new URL("../main.ts", import.meta.url).pathname;

function envInt(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name));
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

function line(name: string, seconds: number, bytes: number) {
  console.log(
    `${name.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s  ${
      (IMAGES / seconds).toFixed(1).padStart(7)
    } images/s  ${(bytes / 1e6 / seconds).toFixed(1).padStart(7)} MB/s`,
  );
}

const work = await Deno.makeTempDir({ prefix: "wharf-sync-bench-" });
const upstream = await startRegistry();
try {
  const client = clientFor(upstream.host);
  const started = performance.now();
  for (let i = 0; i < IMAGES; i++) {
    await pushTestImage(client, "bench/app", `1.0.${i}`, {
      layers: LAYERS,
      layerSize: LAYER_KIB * 1024,
    });
  }
  console.log(
    `upstream: ${IMAGES} images × ${LAYERS} layers × ${LAYER_KIB} KiB (random, gzip level 1) ` +
      `pushed in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  const data = join(work, "wharf");
  const configPath = join(work, "sync.yaml");
  await Deno.writeTextFile(
    configPath,
    stringify({
      data,
      mirrors: [{
        name: "bench",
        upstream: upstream.url,
        repositories: ["bench/app"],
        concurrency: 8,
      }],
    }),
  );
  const syncRun = async () => {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "sync", "run", "bench", "--json", "-q", "-c", configPath],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const [report] = JSON.parse(new TextDecoder().decode(out.stdout));
    return { seconds, report };
  };
  const cold = await syncRun();
  const bytes = cold.report.bytes;
  line("wharf sync run (cold, process)", cold.seconds, bytes);
  const engineSeconds = (cold.report.endedAt - cold.report.startedAt) / 1000;
  line("wharf sync engine only (cold)", engineSeconds, bytes);
  const warm = await syncRun();
  console.log(
    `${"wharf sync run (warm, unchanged)".padEnd(34)} ${warm.seconds.toFixed(2).padStart(7)} s  ` +
      `(${warm.report.unchanged} unchanged, ${warm.report.blobs} blobs fetched)`,
  );

  const hasSkopeo = await Deno.stat(SKOPEO).then(() => true, () => false);
  if (hasSkopeo) {
    const target = await startRegistry();
    try {
      const policy = join(work, "policy.json");
      await Deno.writeTextFile(
        policy,
        JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
      );
      const t0 = performance.now();
      const out = await new Deno.Command(SKOPEO, {
        args: [
          "sync",
          "--policy",
          policy,
          "--src",
          "docker",
          "--dest",
          "docker",
          "--src-tls-verify=false",
          "--dest-tls-verify=false",
          `${upstream.host}/bench/app`,
          `${target.host}/skopeo`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - t0) / 1000;
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
      line("skopeo sync (into wharf serve)", seconds, bytes);
    } finally {
      await target.close();
    }
  } else {
    console.log(`skopeo sync: skipped (no ${SKOPEO})`);
  }
} finally {
  await upstream.close();
  await Deno.remove(work, { recursive: true });
}
