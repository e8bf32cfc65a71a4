/**
 * Mirroring through a fault-injecting proxy in front of a real upstream Wharf: 500s, 429 with
 * `Retry-After`, truncated bodies, altered bytes (wrong digest), a stalled and a slow body, and
 * blob redirects. Transient faults are retried and counted; a persistent wrong digest fails the
 * image without storing anything corrupt, and the next run completes. A `wharf sync run` killed
 * mid-copy leaves an `interrupted` run and nothing corrupt; the next run finishes the work.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals, assertMatch } from "./assert.ts";
import { startRegistry } from "./harness.ts";
import { startFaultProxy } from "./sync_fault_proxy.ts";
import { clientFor, pushTestImage } from "./sync_fixtures.ts";
import { parseConfig } from "../src/config/load.ts";
import { createLogger } from "../src/log/logger.ts";
import { scrub } from "../src/registry/scrub.ts";
import { runMirror } from "../src/sync/engine.ts";
import { SqliteSyncHistory } from "../src/sync/history_sqlite.ts";
import { openWharf } from "../src/wharf.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const BLOB = /\/blobs\/sha256:/;
const MANIFEST_BY_DIGEST = /\/manifests\/sha256:/;

async function localWharf(dir: string, upstream: string, extra: Record<string, unknown> = {}) {
  const config = parseConfig(
    {
      data: join(dir, "data"),
      mirrors: [{
        name: "faulty",
        upstream,
        repositories: ["app/one", "app/two"],
        // Generous, so that even on a loaded machine only the stall (3 s) times out.
        timeout: "1s",
        retries: { attempts: 3, delay: "20ms", maxDelay: "1s" },
        concurrency: 2,
        ...extra,
      }],
    },
    {},
    "test",
  );
  const wharf = await openWharf(config, createLogger({ level: "error", write: () => {} }));
  const history = SqliteSyncHistory.open(join(dir, "data", "sync.db"));
  const run = () =>
    runMirror({ registry: wharf.registry, log: wharf.log, history }, config.mirrors[0]);
  return {
    wharf,
    run,
    async close() {
      await history.close();
      await wharf.close();
    },
  };
}

Deno.test("sync faults: retries, nothing corrupt, the next run completes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-faults-" });
  const upstream = await startRegistry();
  const proxy = startFaultProxy(upstream.url);
  const up = clientFor(upstream.host);
  const one = await pushTestImage(up, "app/one", "1", { layers: 3, layerSize: 64 * 1024 });
  const two = await pushTestImage(up, "app/two", "1", { layers: 3, layerSize: 64 * 1024 });
  const local = await localWharf(dir, proxy.url);
  const { registry } = local.wharf;
  let threeDigest = "";
  try {
    await t.step("transient faults are retried and the run succeeds", async () => {
      proxy.faults.push(
        { kind: "500", path: BLOB, times: 2 },
        { kind: "429", path: MANIFEST_BY_DIGEST, times: 1 },
        { kind: "truncate", path: BLOB, times: 1 },
        { kind: "corrupt", path: BLOB, times: 1 },
        { kind: "stall", path: BLOB, times: 1, delayMs: 3000 },
        { kind: "slow", path: BLOB, times: 1, delayMs: 5 },
        { kind: "redirect", path: BLOB, times: 2 },
      );
      const report = await local.run();
      assertEquals(report.outcome, "success", report.errors.join("\n"));
      assertEquals(report.images, 2);
      for (const kind of ["500", "429", "truncate", "corrupt", "stall", "slow", "redirect"]) {
        assertEquals(proxy.hits[kind] > 0, true, `fault ${kind} fired`);
      }
      // 500×2, 429, truncated, corrupt, stalled: each costs exactly one retry, and every retry
      // is counted; redirects and a slow but moving body cost none. (The stalled body once went
      // unnoticed when a garbage collection cut the fetch's abort off from it: 5.)
      assertEquals(report.retries, 6);
      assertEquals(await registry.metadata.resolveTag("app/one", "1"), one.digest);
      assertEquals(await registry.metadata.resolveTag("app/two", "1"), two.digest);
      assertEquals((await scrub(registry, { quarantine: false })).corrupt, []);
    });

    await t.step("a persistent wrong digest fails the image and stores nothing", async () => {
      proxy.faults.length = 0;
      const three = await pushTestImage(up, "app/one", "2", { layers: 2, layerSize: 32 * 1024 });
      const manifest = await up.getManifest("app/one", three.digest);
      const layers = JSON.parse(new TextDecoder().decode(manifest!.bytes)).layers;
      const bad = layers[1].digest as string;
      proxy.faults.push({ kind: "corrupt", path: new RegExp(bad), times: Infinity });
      const report = await local.run();
      assertEquals(report.outcome, "partial");
      assertEquals(report.unchanged, 2);
      assertMatch(report.errors.join("\n"), /app\/one:2: .*(digest|DIGEST)/);
      assertEquals(await registry.metadata.resolveTag("app/one", "2"), null);
      assertEquals(await registry.metadata.linkedBlobSize("app/one", bad as never), null);
      assertEquals(await registry.metadata.idleUploads(Date.now() + 1000), []);
      assertEquals((await scrub(registry, { quarantine: false })).corrupt, []);
      threeDigest = three.digest;
    });

    await t.step("the next run copies only what is missing", async () => {
      proxy.faults.length = 0;
      const next = await local.run();
      assertEquals(next.outcome, "success", next.errors.join("\n"));
      assertEquals([next.images, next.unchanged, next.blobs], [1, 2, 1]);
      assertEquals(await registry.metadata.resolveTag("app/one", "2"), threeDigest);
    });
  } finally {
    await local.close();
    await proxy.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sync faults: a run killed mid-copy resumes and leaves nothing corrupt", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-crash-" });
  const upstream = await startRegistry();
  const proxy = startFaultProxy(upstream.url);
  try {
    const up = clientFor(upstream.host);
    const image = await pushTestImage(up, "app/big", "1", { layers: 4, layerSize: 256 * 1024 });
    const data = join(dir, "data");
    const configPath = join(dir, "config.yaml");
    await Deno.writeTextFile(
      configPath,
      stringify({
        data,
        mirrors: [{ name: "crashy", upstream: proxy.url, repositories: ["app/big"] }],
      }),
    );
    // Every blob trickles in 1 KiB chunks: the run is still copying when it is killed.
    proxy.faults.push({ kind: "slow", path: BLOB, times: Infinity, delayMs: 5 });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "sync", "run", "crashy", "-q", "-c", configPath],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const db = join(data, "sync.db");
    for (let i = 0; i < 200 && !(await Deno.stat(db).then(() => true, () => false)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1500));
    child.kill("SIGKILL");
    await child.status;

    proxy.faults.length = 0;
    const rerun = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "sync", "run", "crashy", "--json", "-q", "-c", configPath],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(rerun.code, 0, new TextDecoder().decode(rerun.stderr));
    const [report] = JSON.parse(new TextDecoder().decode(rerun.stdout));
    assertEquals([report.outcome, report.images], ["success", 1]);

    const history = SqliteSyncHistory.open(db);
    const runs = await history.list({ mirror: "crashy" });
    await history.close();
    assertEquals(runs.map((r) => r.outcome), ["success", "interrupted"]);

    const config = parseConfig({ data }, {}, "test");
    const wharf = await openWharf(config, createLogger({ level: "error", write: () => {} }));
    try {
      assertEquals(await wharf.registry.metadata.resolveTag("app/big", "1"), image.digest);
      assertEquals((await scrub(wharf.registry, { quarantine: false })).corrupt, []);
    } finally {
      await wharf.close();
    }
  } finally {
    await proxy.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
