/**
 * Registry throughput benchmark: Wharf against CNCF distribution (`docker-registry`, when
 * installed) on the same machine, over loopback, with the same in-process client for both.
 *
 * Figures (median of `BENCH_RUNS`, default 3):
 * - monolithic blob push: POST, then PUT `?digest=` with the body streamed from a file;
 * - the same push with curl sending the body, as a cross-check of the client (if curl exists);
 * - blob pull: GET, consuming the stream;
 * - chunked blob push: POST, PATCH per 8 MiB chunk with `Content-Range`, PUT `?digest=`;
 * - manifest GET requests/s at 32 connections (wrk when installed, else a fetch loop).
 *
 * Run with `./run.sh task bench`. Tunables: `BENCH_BLOB_MIB` (256), `BENCH_RUNS` (3),
 * `BENCH_SECONDS` (10, per manifest run), `BENCH_CONNECTIONS` (32), `WRK` (wrk binary).
 * @module
 */
import { startDistribution } from "../tests/distribution.ts";
import { startRegistry } from "../tests/harness.ts";
import { pushImage } from "../tests/oci_client.ts";
import {
  type BlobFile,
  curlAvailable,
  curlPush,
  expectStatus,
  finishUpload,
  generateBlob,
  megabytesPerSecond,
  monolithicPush,
  pull,
  startUpload,
} from "./blob_transfer.ts";
import { envInt, type Figure, formatTable, formatValue, measure, median } from "./figures.ts";
import { fetchLoopRun, wrkAvailable, wrkRun } from "./manifest_load.ts";

const MIB = 1 << 20;
const BLOB_BYTES = envInt("BENCH_BLOB_MIB", 256) * MIB;
const CHUNK_BYTES = 8 * MIB;
const RUNS = envInt("BENCH_RUNS", 3);
const SECONDS = envInt("BENCH_SECONDS", 10);
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 32);

interface Server {
  name: string;
  url: string;
  close(): Promise<void>;
}

/** POST, one PATCH per 8 MiB chunk read from the file, then PUT with no body. */
async function chunkedPush(server: Server, repo: string, blob: BlobFile): Promise<number> {
  const start = performance.now();
  let location = await startUpload(server.url, repo);
  using file = await Deno.open(blob.path);
  for (let offset = 0; offset < blob.size;) {
    const chunk = new Uint8Array(Math.min(CHUNK_BYTES, blob.size - offset));
    for (let read = 0; read < chunk.length;) {
      const n = await file.read(chunk.subarray(read));
      if (n === null) throw new Error("blob file ended early");
      read += n;
    }
    const res = await fetch(location, {
      method: "PATCH",
      body: chunk,
      headers: {
        "content-type": "application/octet-stream",
        "content-range": `${offset}-${offset + chunk.length - 1}`,
      },
    });
    await expectStatus(res, 202, `PATCH ${server.name} at ${offset}`);
    await res.body?.cancel();
    location = new URL(res.headers.get("location")!, server.url);
    offset += chunk.length;
  }
  await finishUpload(location, blob);
  return megabytesPerSecond(blob.size, performance.now() - start);
}

async function benchServer(server: Server, blob: BlobFile, useWrk: boolean): Promise<Figure[]> {
  const mib = blob.size / MIB;
  const figures: Figure[] = [];
  const measureOn = (figure: Figure, fn: (run: number) => Promise<number>) =>
    measure(figure, RUNS, server.name, fn);
  figures.push(
    await measureOn(
      { label: `monolithic push ${mib} MiB (fetch)`, unit: "MB/s", runs: [] },
      (run) => monolithicPush(server.url, `bench/mono${run}`, blob),
    ),
  );
  if (curlAvailable()) {
    figures.push(
      await measureOn(
        { label: `monolithic push ${mib} MiB (curl -T)`, unit: "MB/s", runs: [] },
        (run) => curlPush(server.url, `bench/curl${run}`, blob),
      ),
    );
  }
  // Pull from the repository of the first successful monolithic push.
  figures.push(
    await measureOn(
      { label: `blob pull ${mib} MiB`, unit: "MB/s", runs: [] },
      () => pull(server.url, "bench/mono1", blob),
    ),
  );
  figures.push(
    await measureOn(
      { label: `chunked push ${mib} MiB (8 MiB chunks)`, unit: "MB/s", runs: [] },
      (run) => chunkedPush(server, `bench/chunked${run}`, blob),
    ),
  );
  const label = `manifest GET, ${CONNECTIONS} conns (${useWrk ? "wrk" : "fetch loop"})`;
  const load = (url: string, seconds: number) =>
    useWrk
      ? wrkRun(url, { seconds, connections: CONNECTIONS })
      : fetchLoopRun([url], { seconds, connections: CONNECTIONS });
  let manifestUrl: string | undefined;
  try {
    await pushImage(server.url, "bench/small", "v1", { layers: 1 });
    manifestUrl = `${server.url}/v2/bench/small/manifests/v1`;
    // A short warm-up so both servers start the measured runs with open connections and JIT.
    await load(manifestUrl, 2);
  } catch (err) {
    figures.push({ label, unit: "req/s", runs: [], error: String(err) });
    console.log(`  ${server.name} ${label}: FAILED ${err}`);
  }
  if (manifestUrl) {
    const url = manifestUrl;
    figures.push(
      await measureOn({ label, unit: "req/s", runs: [] }, () => load(url, SECONDS)),
    );
  }
  return figures;
}

function printTable(results: Map<string, Figure[]>): void {
  const names = [...results.keys()];
  const base = results.get(names[0])!;
  const header = ["figure", "unit", ...names];
  if (names.length === 2) header.push(`${names[0]}/${names[1]}`);
  const rows = base.map((figure, i) => {
    const values = names.map((name) => median(results.get(name)![i]?.runs ?? []));
    const row = [figure.label, figure.unit, ...values.map(formatValue)];
    if (names.length === 2) {
      const ratio = values[0] / values[1];
      row.push(Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "n/a");
    }
    return row;
  });
  console.log(`\nMedian of ${RUNS} runs:\n`);
  for (const line of formatTable(header, rows)) console.log(line);
}

async function main(): Promise<void> {
  const useWrk = wrkAvailable();
  const tmp = await Deno.makeTempDir({ prefix: "wharf-bench-" });
  try {
    console.log(
      `Wharf registry benchmark — ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
    );
    console.log(
      `blob ${BLOB_BYTES / MIB} MiB, ${RUNS} runs per figure, manifest GET via ` +
        (useWrk
          ? `wrk -t2 -c${CONNECTIONS} -d${SECONDS}s`
          : `${CONNECTIONS} concurrent Deno fetch workers for ${SECONDS}s (wrk not found)`),
    );
    console.log("blob client: Deno fetch in this process (request bodies sent chunked)\n");
    const blob = await generateBlob(tmp, BLOB_BYTES);
    console.log(`generated ${blob.path} (${blob.digest})`);

    const results = new Map<string, Figure[]>();
    const starters: [string, () => Promise<Server | null>][] = [
      ["Wharf", async () => ({ name: "Wharf", ...await startRegistry() })],
      ["distribution", async () => {
        const registry = await startDistribution();
        return registry && { name: "distribution", ...registry };
      }],
    ];
    for (const [name, start] of starters) {
      let server: Server | null;
      try {
        server = await start();
      } catch (err) {
        console.log(`\n${name} did not start, skipped: ${err}`);
        continue;
      }
      if (!server) {
        console.log(`\n${name}: /usr/bin/docker-registry not found, skipped`);
        continue;
      }
      console.log(`\n${name} at ${server.url}`);
      try {
        results.set(name, await benchServer(server, blob, useWrk));
      } finally {
        await server.close();
      }
    }
    printTable(results);
    for (const [name, figures] of results) {
      for (const figure of figures) {
        if (figure.error) console.log(`\n${name} ${figure.label} failed: ${figure.error}`);
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await main();
