/**
 * Scale-out benchmark (issue #9), in one run on one machine, over loopback:
 *
 * - A: one `wharf serve` on the filesystem + SQLite (the embedded default);
 * - B: one `wharf serve` on S3 (a throw-away Ceph RGW, bluestore) + PostgreSQL 15 (fsync on);
 * - C: three `wharf serve` processes on that same bucket and database (B's process and two more).
 *
 * Figures: monolithic push and blob pull of a large random blob (MB/s, median of the runs; each
 * push run a different blob), manifest GET req/s (wrk, 32 connections), and for C the same load
 * spread over the three processes (one wrk, three threads, a Lua script pointing thread i at
 * process i) and three concurrent pulls, each against one process and against three. Every
 * figure also gets the CPU seconds spent on it, per GB or per request, by the client (this
 * process, curl, wrk), the Wharf processes, PostgreSQL, Ceph, and everything else on the machine
 * (from /proc), so the reader can tell what limits it.
 *
 * Run: `./run.sh task bench-scaleout [--quick]`. Settings (flag, else environment variable):
 * `--blob-mib` / `BENCH_BLOB_MIB` (256), `--runs` / `BENCH_RUNS` (3), `--seconds` /
 * `BENCH_SECONDS` (10 per manifest run), `--connections` / `BENCH_CONNECTIONS` (32). `--quick`:
 * 32 MiB, 1 run, 3 s. The access log is off (`log.access: false`) so log lines piped to this
 * process do not cost the client CPU. Not part of the test suite.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cephMissing, type CephRgw, s3StorageConfig, startCephRgw } from "../tests/ceph_rgw.ts";
import { startRegistry, type TestRegistry } from "../tests/harness.ts";
import { pushImage } from "../tests/oci_client.ts";
import {
  type PostgresCluster,
  postgresUnavailableReason,
  startPostgres,
} from "../tests/postgres.ts";
import {
  type BlobFile,
  curlAvailable,
  curlPull,
  curlPush,
  generateBlob,
  monolithicPush,
  pull,
} from "./blob_transfer.ts";
import { envInt, formatTable, formatValue, median } from "./figures.ts";
import {
  fetchLoopRun,
  type LoadOptions,
  writeSpreadScript,
  wrkAvailable,
  wrkRun,
} from "./manifest_load.ts";
import {
  busySeconds,
  cephPids,
  type CpuUse,
  cpuUse,
  type PidSource,
  postgresPids,
  sampleCpu,
  sumCpuUse,
} from "./process_cpu.ts";

const MIB = 1 << 20;

/** Sizes and durations of one run. */
interface Settings {
  blobMiB: number;
  runs: number;
  seconds: number;
  connections: number;
}

/** One line of the result table: a figure of one configuration, with its runs and CPU use. */
interface Row {
  config: string;
  figure: string;
  unit: "MB/s" | "req/s";
  runs: number[];
  /** Bytes moved or requests answered in each run (for CPU per GB or per request). */
  work: number[];
  cpu: CpuUse[];
  error?: string;
}

/** The Wharf processes under test and the parties whose CPU time is counted. */
interface Stage {
  tmp: string;
  blobs: BlobFile[];
  useWrk: boolean;
  /** The blob client: curl when installed (cheap on CPU), else Deno fetch. */
  client: "curl" | "fetch";
  settings: Settings;
  wharfPids: number[];
  parties: Record<string, PidSource>;
  rows: Row[];
}

const PARTIES = ["client", "wharf", "postgres", "ceph"];

function readSettings(): Settings {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      "blob-mib": { type: "string" },
      runs: { type: "string" },
      seconds: { type: "string" },
      connections: { type: "string" },
    },
  });
  const quick = values.quick;
  const pick = (flag: keyof typeof values, env: string, full: number, short: number) => {
    const given = values[flag];
    if (typeof given !== "string") return envInt(env, quick ? short : full);
    const value = Number(given);
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`--${flag} ${given}: not a positive integer`);
    }
    return value;
  };
  return {
    blobMiB: pick("blob-mib", "BENCH_BLOB_MIB", 256, 32),
    runs: pick("runs", "BENCH_RUNS", 3, 1),
    seconds: pick("seconds", "BENCH_SECONDS", 10, 3),
    connections: pick("connections", "BENCH_CONNECTIONS", 32, 32),
  };
}

/**
 * Runs `fn` `runs` times, sampling every party's CPU time around each run; `fn` returns the
 * figure's value and the work done (bytes or requests). A failure ends the row.
 */
async function measureRow(
  stage: Stage,
  row: Omit<Row, "runs" | "work" | "cpu">,
  fn: (run: number) => Promise<{ value: number; work: number }>,
): Promise<Row> {
  const result: Row = { ...row, runs: [], work: [], cpu: [] };
  stage.rows.push(result);
  for (let run = 1; run <= stage.settings.runs; run++) {
    try {
      const before = sampleCpu(stage.parties);
      const { value, work } = await fn(run);
      const use = cpuUse(before, sampleCpu(stage.parties));
      result.runs.push(value);
      result.work.push(work);
      result.cpu.push(use);
      const cores = (seconds: number) => (seconds / use.wall).toFixed(2);
      console.log(
        `  ${row.config} | ${row.figure} run ${run}: ${value.toFixed(1)} ${row.unit}` +
          ` (cores busy ${cores(busySeconds(use.machine))}, Wharf ${cores(use.parties.wharf)})`,
      );
    } catch (err) {
      result.error = err instanceof Error ? err.message : String(err);
      console.log(`  ${row.config} | ${row.figure} run ${run}: FAILED ${result.error}`);
      break;
    }
  }
  return result;
}

/** Manifest GET load on `urls` (spread when several): wrk, else concurrent fetch loops. */
async function manifestLoad(
  stage: Stage,
  urls: string[],
  options: LoadOptions,
): Promise<number> {
  if (!stage.useWrk) return await fetchLoopRun(urls, options);
  const script = urls.length > 1 ? await writeSpreadScript(stage.tmp, urls) : undefined;
  return await wrkRun(urls[0], { ...options, script });
}

/** Pushes a small image to `base` and returns the URL of its manifest. */
async function smallImage(base: string): Promise<string> {
  await pushImage(base, "bench/small", "v1", { layers: 1 });
  return `${base}/v2/bench/small/manifests/v1`;
}

/** Push, pull and manifest GET figures of one process (configurations A and B). */
async function benchOneProcess(stage: Stage, config: string, base: string): Promise<void> {
  const { blobMiB, seconds, connections } = stage.settings;
  const push = stage.client === "curl" ? curlPush : monolithicPush;
  const get = stage.client === "curl" ? curlPull : pull;
  await measureRow(
    stage,
    { config, figure: `monolithic push ${blobMiB} MiB`, unit: "MB/s" },
    async (run) => {
      const blob = stage.blobs[run - 1];
      return { value: await push(base, `bench/push${run}`, blob), work: blob.size };
    },
  );
  await measureRow(
    stage,
    { config, figure: `blob pull ${blobMiB} MiB`, unit: "MB/s" },
    async () => ({ value: await get(base, "bench/push1", stage.blobs[0]), work: blobMiB * MIB }),
  );
  const url = await smallImage(base);
  const load = { seconds, connections };
  await manifestLoad(stage, [url], { ...load, seconds: 2 }); // warm-up: connections and JIT
  await measureRow(
    stage,
    { config, figure: `manifest GET, ${connections} conns`, unit: "req/s" },
    async () => {
      const rate = await manifestLoad(stage, [url], load);
      return { value: rate, work: rate * seconds };
    },
  );
}

/** `count` concurrent pulls of the first blob, pull i from `bases[i % bases.length]`; MB/s. */
async function concurrentPulls(stage: Stage, bases: string[], count: number): Promise<number> {
  const blob = stage.blobs[0];
  const get = stage.client === "curl" ? curlPull : pull;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) => get(bases[i % bases.length], "bench/push1", blob)),
  );
  return (count * blob.size) / 1e6 / ((performance.now() - start) / 1000);
}

/** Configuration C: one process against three, same client load, on S3 + PostgreSQL. */
async function benchThreeProcesses(stage: Stage, bases: string[]): Promise<void> {
  const { blobMiB, seconds } = stage.settings;
  // wrk gives each thread connections / threads connections: three threads, one per process.
  const connections = Math.ceil(stage.settings.connections / 3) * 3;
  const urls = await Promise.all(bases.map(smallImage));
  const load = { seconds, connections, threads: 3 };
  const one = "C: S3 + PG, 1 of 3";
  const three = "C: S3 + PG, 3";
  const spreads: [string, string[]][] = [[one, [bases[0]]], [three, bases]];
  for (const [config, targets] of spreads) {
    await measureRow(
      stage,
      { config, figure: `3 concurrent pulls ${blobMiB} MiB`, unit: "MB/s" },
      async () => ({
        value: await concurrentPulls(stage, targets, 3),
        work: 3 * blobMiB * MIB,
      }),
    );
  }
  const manifestSpreads: [string, string[]][] = [[one, [urls[0]]], [three, urls]];
  for (const [config, targets] of manifestSpreads) {
    await manifestLoad(stage, targets, { ...load, seconds: 2 });
    await measureRow(
      stage,
      { config, figure: `manifest GET, ${connections} conns, 3 wrk threads`, unit: "req/s" },
      async () => {
        const rate = await manifestLoad(stage, targets, load);
        return { value: rate, work: rate * seconds };
      },
    );
  }
}

/** Starts one Wharf process and counts its CPU time from now on. */
async function startWharf(
  stage: Stage,
  dataDir: string,
  config: Record<string, unknown>,
): Promise<TestRegistry> {
  const registry = await startRegistry({ dataDir, config: { ...config, log: { access: false } } });
  stage.wharfPids.push(registry.process.pid);
  return registry;
}

/** Stops Wharf processes and forgets their PIDs. */
async function stopWharf(stage: Stage, registries: TestRegistry[]): Promise<void> {
  for (const registry of registries) {
    await registry.close();
    stage.wharfPids.splice(stage.wharfPids.indexOf(registry.process.pid), 1);
  }
}

function printResults(stage: Stage): void {
  const header = [
    "configuration",
    "figure",
    "median",
    "unit",
    "CPU per",
    ...PARTIES,
    "other",
    "irq",
    "steal",
    "iowait",
    "wharf cores",
    "cores busy",
  ];
  const rows = stage.rows.map((row) => {
    const value = median(row.runs);
    if (row.cpu.length === 0) return [row.config, row.figure, formatValue(value), row.unit];
    const total = sumCpuUse(row.cpu);
    const work = row.work.reduce((a, b) => a + b, 0);
    // Seconds per GB for transfers, microseconds per request for manifest GETs.
    const per = row.unit === "MB/s" ? 1e9 / work : 1e6 / work;
    const ours = PARTIES.reduce((sum, name) => sum + (total.parties[name] ?? 0), 0);
    const cell = (seconds: number) => (seconds * per).toFixed(row.unit === "MB/s" ? 2 : 0);
    return [
      row.config,
      row.figure,
      formatValue(value),
      row.unit,
      row.unit === "MB/s" ? "s/GB" : "µs/req",
      ...PARTIES.map((name) => cell(total.parties[name] ?? 0)),
      cell(Math.max(0, total.machine.tasks + total.machine.irq - ours)),
      cell(total.machine.irq),
      cell(total.machine.steal),
      cell(total.machine.iowait),
      ((total.parties.wharf ?? 0) / total.wall).toFixed(2),
      (busySeconds(total.machine) / total.wall).toFixed(2),
    ];
  });
  console.log(
    `\nMedian of ${stage.settings.runs} run(s); CPU time spent per GB moved or per request ` +
      "(all runs): client = this process, curl and wrk; other = all other busy time on the " +
      "machine; irq = interrupts and softirqs (loopback networking), machine-wide: the kernel's " +
      "tick accounting also charges them to the process they interrupted, so they are part of " +
      "the columns before, not added to them; steal = taken by the " +
      "hypervisor; iowait = idle with disk I/O outstanding; wharf cores = Wharf CPU seconds / wall seconds (one process runs its " +
      `JavaScript on one thread); cores busy = all busy CPU seconds / wall seconds ` +
      `(${navigator.hardwareConcurrency} cores).\n`,
  );
  for (const line of formatTable(header, rows)) console.log(line);
  const find = (config: string, figure: string) =>
    median(
      stage.rows.find((r) => r.config.startsWith(config) && r.figure.startsWith(figure))?.runs ??
        [],
    );
  const ratio = (a: number, b: number) => Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "n/a";
  console.log(
    `\nS3 + PostgreSQL vs filesystem + SQLite (one process): ` +
      `push ${ratio(find("B", "monolithic push"), find("A", "monolithic push"))}, ` +
      `pull ${ratio(find("B", "blob pull"), find("A", "blob pull"))}, ` +
      `manifest GET ${ratio(find("B", "manifest GET"), find("A", "manifest GET"))}`,
  );
  console.log(
    `three processes vs one (S3 + PostgreSQL, same client load): ` +
      `manifest GET ${
        ratio(find("C: S3 + PG, 3", "manifest"), find("C: S3 + PG, 1", "manifest"))
      }, ` +
      `3 concurrent pulls ${
        ratio(find("C: S3 + PG, 3", "3 concurrent"), find("C: S3 + PG, 1", "3 concurrent"))
      }`,
  );
  for (const row of stage.rows) {
    if (row.error) console.log(`\n${row.config} ${row.figure} failed: ${row.error}`);
  }
}

function loadAverage(): string {
  return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
}

async function main(): Promise<void> {
  const settings = readSettings();
  const skip = postgresUnavailableReason() ?? cephMissing();
  if (skip) {
    console.log(`scale-out benchmark skipped: ${skip}`);
    return;
  }
  const useWrk = wrkAvailable();
  const client = curlAvailable() ? "curl" : "fetch";
  console.log(
    `Wharf scale-out benchmark — ${navigator.hardwareConcurrency} cores, ` +
      `Deno ${Deno.version.deno}, load average ${loadAverage()}`,
  );
  console.log(
    `blob ${settings.blobMiB} MiB, ${settings.runs} run(s) per figure, blob client ` +
      (client === "curl" ? "curl" : "Deno fetch (curl not found)") + ", manifest GET via " +
      (useWrk ? `wrk, ${settings.seconds} s per run` : `fetch loops (wrk not found)`),
  );
  const tmp = await Deno.makeTempDir({ prefix: "wharf-bench-scaleout-" });
  let postgres: PostgresCluster | undefined;
  let rgw: CephRgw | undefined;
  const registries: TestRegistry[] = [];
  const stage: Stage = {
    tmp,
    blobs: [],
    useWrk,
    client,
    settings,
    wharfPids: [],
    parties: {},
    rows: [],
  };
  try {
    for (let run = 1; run <= settings.runs; run++) {
      const dir = join(tmp, `blob${run}`);
      await Deno.mkdir(dir);
      stage.blobs.push(await generateBlob(dir, settings.blobMiB * MIB));
    }
    const started = performance.now();
    [postgres, rgw] = await Promise.all([
      startPostgres({ durable: true }),
      startCephRgw({ store: "bluestore" }),
    ]);
    console.log(
      `PostgreSQL (fsync on) and Ceph RGW (bluestore) up in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    stage.parties = {
      client: () => [Deno.pid],
      wharf: () => stage.wharfPids,
      postgres: postgresPids(postgres.port),
      ceph: cephPids(rgw.endpoint),
    };

    const a = await startWharf(stage, join(tmp, "a"), {});
    registries.push(a);
    await benchOneProcess(stage, "A: fs + SQLite, 1", a.url);
    await stopWharf(stage, registries.splice(0));

    const bucket = await rgw.bucket("wharf");
    const shared = {
      storage: s3StorageConfig(bucket),
      metadata: { driver: "postgres", url: postgres.url },
    };
    registries.push(await startWharf(stage, join(tmp, "b0"), shared));
    await benchOneProcess(stage, "B: S3 + PG, 1", registries[0].url);
    for (const name of ["c1", "c2"]) {
      registries.push(await startWharf(stage, join(tmp, name), shared));
    }
    await benchThreeProcesses(stage, registries.map((r) => r.url));
    printResults(stage);
    console.log(`\nload average at the end: ${loadAverage()}`);
  } finally {
    await stopWharf(stage, registries);
    await rgw?.stop();
    await postgres?.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await main();
