/**
 * One mirror scheduled on three `wharf serve` processes sharing one PostgreSQL database and one
 * Ceph bucket, all real and started here; the upstream is a Wharf behind the fault proxy. Every
 * process runs the same schedule: each tick yields exactly one run (the other two processes
 * find it claimed), and the mirrored image comes back byte for byte from every process. Then
 * a run is made slow, a manual `wharf sync run` is refused while it goes, its process is
 * SIGKILLed, and after the lease lapses another process takes the mirror over on a later tick;
 * the killed run ends `interrupted`. Skipped, saying why, without PostgreSQL or Ceph.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "./ceph_rgw.ts";
import { runWharf, startRegistry, type TestRegistry } from "./harness.ts";
import { sha256 } from "./oci_client.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";
import { startFaultProxy } from "./sync_fault_proxy.ts";
import { clientFor, pushTestImage } from "./sync_fixtures.ts";

const skip = postgresUnavailableReason() ?? cephMissing();
if (skip) console.warn(`scaleout_sync_test: skipped — ${skip}`);

const INTERVAL_MS = 3000;
const LEASE_MS = 4000;
const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Run {
  id: number;
  tick: string | null;
  trigger: string;
  pid: number;
  outcome: string;
  images: number;
  startedAt: string;
}

interface LogLine {
  msg: string;
  tick?: string;
}

async function runs(base: string): Promise<Run[]> {
  const response = await fetch(`${base}/wharf/v1/sync?mirror=up&limit=1000`);
  assertEquals(response.status, 200);
  return (await response.json()).runs;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 40_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function logLines(process: TestRegistry): LogLine[] {
  return process.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Manifest bytes and the SHA-256 of every layer, as `base` serves `app/one:tag`. */
async function pulled(base: string, tag: string) {
  const response = await fetch(`${base}/v2/app/one/manifests/${tag}`, {
    headers: { accept: ACCEPT },
  });
  assertEquals(response.status, 200, `${base} manifest ${tag}`);
  const manifest = new Uint8Array(await response.arrayBuffer());
  const layers: { digest: string }[] = JSON.parse(new TextDecoder().decode(manifest)).layers;
  const hashes = [];
  for (const layer of layers) {
    const blob = await fetch(`${base}/v2/app/one/blobs/${layer.digest}`);
    assertEquals(blob.status, 200);
    hashes.push(sha256(new Uint8Array(await blob.arrayBuffer())));
  }
  assertEquals(hashes, layers.map((l) => l.digest));
  return { manifest: sha256(manifest), hashes };
}

Deno.test({
  name: "scale-out sync: one run per tick across three processes; a killed run is taken over",
  ignore: skip !== null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "wharf-scaleout-sync-" });
    const postgres = await startPostgres();
    const rgw = await startCephRgw();
    const upstream = await startRegistry();
    const proxy = startFaultProxy(upstream.url);
    const processes: TestRegistry[] = [];
    try {
      const up = clientFor(upstream.host);
      await pushTestImage(up, "app/one", "1", { layers: 2, layerSize: 200_000 });
      const bucket = await rgw.bucket("wharf");
      const config = {
        storage: s3StorageConfig(bucket),
        metadata: { driver: "postgres", url: postgres.url },
        log: { level: "debug", access: false },
        mirrors: [{
          name: "up",
          upstream: proxy.url,
          repositories: ["app/one"],
          schedule: `${INTERVAL_MS / 1000}s`,
          lease: `${LEASE_MS / 1000}s`,
          timeout: "30s",
          retries: { attempts: 1, delay: "50ms" },
        }],
      };
      const configPath = join(dir, "wharf.yaml");
      await Deno.writeTextFile(configPath, stringify(config));
      // Started together: the history's tables are created once, under an advisory lock.
      processes.push(
        ...await Promise.all(
          [0, 1, 2].map((i) => startRegistry({ dataDir: join(dir, `p${i}`), config })),
        ),
      );
      const allStarted = Date.now();
      const byPid = new Map(processes.map((p) => [p.process.pid, p]));
      const [a] = processes;
      let survivor = a;

      await t.step("every tick yields exactly one run across the three processes", async () => {
        // Ticks after all three started, old enough for every process to have tried them.
        const settled = (list: Run[]) =>
          list.filter((r) =>
            r.tick !== null && Date.parse(r.tick) >= allStarted &&
            Date.parse(r.tick) < Date.now() - 1500 && r.outcome !== "running"
          );
        await waitFor("three settled ticks", async () => {
          return settled(await runs(a.url)).length >= 3 ? true : undefined;
        });
        const all = await runs(a.url);
        const scheduled = all.filter((r) => r.trigger === "schedule");
        assertEquals(scheduled.length, all.length, "only scheduled runs so far");
        const ticks = scheduled.map((r) => r.tick!);
        assertEquals(new Set(ticks).size, ticks.length, `one run per tick: ${ticks}`);
        for (const run of scheduled) {
          assertEquals(run.outcome, "success", JSON.stringify(run));
          assertEquals(Date.parse(run.tick!) % INTERVAL_MS, 0, "ticks are interval multiples");
          assertOk(byPid.has(run.pid), `run ${run.id} by a process of this test`);
        }
        assertEquals(scheduled.at(-1)!.images, 1, "the first run copied the image");
        // Each settled tick: one process ran it, the other two found it claimed.
        const lines = processes.map(logLines);
        for (const run of settled(scheduled)) {
          const found = processes.map((p, i) =>
            p.process.pid === run.pid ||
            lines[i].some((l) => l.msg === "tick claimed elsewhere" && l.tick === run.tick)
          );
          assertEquals(found, [true, true, true], `tick ${run.tick}`);
        }
        const ranBy = new Set(scheduled.map((r) => r.pid));
        console.log(`  ${scheduled.length} ticks, run by ${ranBy.size} distinct process(es)`);
      });

      await t.step(
        "a process firing late finds its tick claimed, the run long finished",
        async () => {
          // SIGSTOP holds one process's timers past a tick (as a stalled VM would); it resumes
          // only once another process has run that tick to the end.
          const late = processes[2];
          let tick: number;
          for (;;) {
            tick = (Math.floor(Date.now() / INTERVAL_MS) + 1) * INTERVAL_MS;
            const live = (await runs(a.url)).some((r) => r.outcome === "running");
            if (!live && tick - Date.now() > 700) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          late.process.kill("SIGSTOP");
          let finished: Run;
          try {
            finished = await waitFor("the tick's run to end", async () => {
              const run = (await runs(a.url)).find((r) => r.tick === new Date(tick).toISOString());
              return run && run.outcome !== "running" ? run : undefined;
            }, 20_000);
          } finally {
            late.process.kill("SIGCONT");
          }
          assertOk(finished.pid !== late.process.pid);
          const iso = new Date(tick).toISOString();
          await waitFor("the late process to try the tick", () =>
            Promise.resolve(
              logLines(late).some((l) => l.msg === "tick claimed elsewhere" && l.tick === iso)
                ? true
                : undefined,
            ), 10_000);
          const forTick = (await runs(a.url)).filter((r) => r.tick === iso);
          assertEquals(forTick.map((r) => r.id), [finished.id]);
        },
      );

      await t.step("the mirrored image is byte-identical from every process", async () => {
        const expected = await pulled(upstream.url, "1");
        for (const process of processes) assertEquals(await pulled(process.url, "1"), expected);
      });

      await t.step("a killed process's run is interrupted and another takes over", async () => {
        // Blobs now trickle (1 KiB every 20 ms): the 1 MiB layer keeps the run going ~20 s.
        proxy.faults.push({ kind: "slow", path: /\/blobs\/sha256:/, times: Infinity, delayMs: 20 });
        await pushTestImage(up, "app/one", "2", { layers: 1, layerSize: 1 << 20 });
        const slow = await waitFor("a running run", async () => {
          return (await runs(a.url)).find((r) => r.outcome === "running");
        });
        const holder = byPid.get(slow.pid)!;
        const others = processes.filter((p) => p !== holder);
        survivor = others[0];

        // While it runs, a manual run anywhere is refused, naming the holder.
        const manual = await runWharf([
          "sync",
          "run",
          "up",
          "-q",
          "-c",
          configPath,
          "-d",
          join(dir, "cli"),
        ]);
        assertEquals(manual.code, 1, manual.stdout + manual.stderr);
        assertMatch(manual.stderr, new RegExp(`already running in process ${slow.pid}\\b`));
        // The other processes' ticks are skipped while the mirror is held.
        await waitFor("a tick skipped elsewhere", () => {
          const skipped = others.some((p) =>
            logLines(p).some((l) => l.msg === "tick skipped, still running")
          );
          return Promise.resolve(skipped ? true : undefined);
        });
        const still = (await runs(a.url)).find((r) => r.id === slow.id)!;
        assertEquals(still.outcome, "running");

        holder.process.kill("SIGKILL");
        await holder.process.status;
        const killedAt = Date.now();
        proxy.faults.length = 0;

        const takeover = await waitFor("a later run by another process", async () => {
          return (await runs(others[0].url)).find((r) =>
            r.id > slow.id && r.outcome === "success" && r.images === 1
          );
        });
        assertOk(takeover.pid !== slow.pid && byPid.has(takeover.pid));
        assertEquals(takeover.trigger, "schedule");
        // Not before the holder's lease (renewed every third of it) had lapsed.
        const waited = Date.parse(takeover.startedAt) - killedAt;
        assertOk(waited >= (LEASE_MS * 2) / 3 - 500, `taken over ${waited} ms after the kill`);
        const killed = (await runs(others[1].url)).find((r) => r.id === slow.id)!;
        assertEquals(killed.outcome, "interrupted");

        const expected = await pulled(upstream.url, "2");
        for (const process of others) assertEquals(await pulled(process.url, "2"), expected);
      });

      await t.step("wharf sync status reads the shared history", async () => {
        const status = await runWharf([
          "sync",
          "status",
          "--json",
          "-n",
          "1000",
          "-c",
          configPath,
          "-d",
          join(dir, "cli"),
        ]);
        assertEquals(status.code, 0, status.stderr);
        const listed: Run[] = JSON.parse(status.stdout);
        assertEquals(listed.map((r) => r.id), (await runs(survivor.url)).map((r) => r.id));
        assertOk(listed.some((r) => r.outcome === "interrupted"));
      });
    } finally {
      for (const process of processes) await process.close({ keepData: true });
      await proxy.close();
      await upstream.close();
      await rgw.stop();
      await postgres.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
