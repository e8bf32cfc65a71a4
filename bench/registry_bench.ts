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
import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";
import { startDistribution } from "../tests/distribution.ts";
import { startRegistry } from "../tests/harness.ts";

const MIB = 1 << 20;
const BLOB_BYTES = envInt("BENCH_BLOB_MIB", 256) * MIB;
const CHUNK_BYTES = 8 * MIB;
const RUNS = envInt("BENCH_RUNS", 3);
const SECONDS = envInt("BENCH_SECONDS", 10);
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 32);
const WRK = Deno.env.get("WRK") ?? "wrk";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Server {
  name: string;
  url: string;
  close(): Promise<void>;
}

interface Blob {
  path: string;
  digest: string;
  size: number;
}

/** One figure: its label, unit, and the value of each run (NaN when a run failed). */
interface Figure {
  label: string;
  unit: string;
  runs: number[];
  error?: string;
}

function envInt(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name) ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function megabytesPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** Writes `size` random bytes to a file in `dir` in 8 MiB pieces, hashing as it goes. */
async function generateBlob(dir: string, size: number): Promise<Blob> {
  const path = join(dir, "blob.bin");
  const hash = createHash("sha256");
  const buffer = new Uint8Array(CHUNK_BYTES);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let written = 0; written < size;) {
    const piece = buffer.subarray(0, Math.min(buffer.length, size - written));
    randomFillSync(piece);
    hash.update(piece);
    for (let off = 0; off < piece.length;) off += await file.write(piece.subarray(off));
    written += piece.length;
  }
  return { path, digest: `sha256:${hash.digest("hex")}`, size };
}

/** Fails with the response body when the status is not the expected one. */
async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${await res.text()}`);
  }
}

async function startUpload(server: Server, repo: string): Promise<URL> {
  const res = await fetch(`${server.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await expectStatus(res, 202, "POST upload");
  await res.body?.cancel();
  return new URL(res.headers.get("location")!, server.url);
}

async function finishUpload(
  server: Server,
  location: URL,
  blob: Blob,
  body?: BodyInit,
): Promise<void> {
  location.searchParams.set("digest", blob.digest);
  const res = await fetch(location, {
    method: "PUT",
    body,
    headers: { "content-type": "application/octet-stream" },
  });
  await expectStatus(res, 201, `PUT ${server.name} upload`);
  await res.body?.cancel();
  const digest = res.headers.get("docker-content-digest");
  if (digest !== null && digest !== blob.digest) {
    throw new Error(`PUT returned digest ${digest}, expected ${blob.digest}`);
  }
}

/** POST then one PUT whose body streams from the file (Deno's fetch sends it chunked). */
async function monolithicPush(server: Server, repo: string, blob: Blob): Promise<number> {
  const start = performance.now();
  const location = await startUpload(server, repo);
  const file = await Deno.open(blob.path);
  await finishUpload(server, location, blob, file.readable);
  return megabytesPerSecond(blob.size, performance.now() - start);
}

/**
 * The same monolithic push with curl sending the PUT body (with Content-Length), as a
 * cross-check that the figure above measures the server and not Deno's fetch upload path.
 */
async function curlPush(server: Server, repo: string, blob: Blob): Promise<number> {
  const start = performance.now();
  const location = await startUpload(server, repo);
  location.searchParams.set("digest", blob.digest);
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-H",
      "Expect:",
      "-H",
      "Content-Type: application/octet-stream",
      "-T",
      blob.path,
      location.href,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const status = new TextDecoder().decode(out.stdout);
  if (!out.success || status !== "201") {
    throw new Error(`curl PUT: status ${status}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return megabytesPerSecond(blob.size, performance.now() - start);
}

function curlAvailable(): boolean {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** POST, one PATCH per 8 MiB chunk read from the file, then PUT with no body. */
async function chunkedPush(server: Server, repo: string, blob: Blob): Promise<number> {
  const start = performance.now();
  let location = await startUpload(server, repo);
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
  await finishUpload(server, location, blob);
  return megabytesPerSecond(blob.size, performance.now() - start);
}

/** GET the blob and count the bytes of the body stream. */
async function pull(server: Server, repo: string, blob: Blob): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${server.url}/v2/${repo}/blobs/${blob.digest}`);
  await expectStatus(res, 200, "GET blob");
  let received = 0;
  for await (const chunk of res.body!) received += chunk.length;
  const ms = performance.now() - start;
  if (received !== blob.size) throw new Error(`GET blob: ${received} bytes, expected ${blob.size}`);
  return megabytesPerSecond(blob.size, ms);
}

/** Pushes a one-layer image with a small config; returns the manifest URL. */
async function pushSmallImage(server: Server, repo: string): Promise<string> {
  const push = async (bytes: Uint8Array<ArrayBuffer>) => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    await finishUpload(server, await startUpload(server, repo), {
      path: "",
      digest,
      size: bytes.length,
    }, bytes);
    return { digest, size: bytes.length };
  };
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const layer = randomFillSync(new Uint8Array(1024));
  const config = encode({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } });
  const manifest = encode({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...await push(config) },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...await push(layer) }],
  });
  const url = `${server.url}/v2/${repo}/manifests/v1`;
  const res = await fetch(url, {
    method: "PUT",
    body: manifest,
    headers: { "content-type": OCI_MANIFEST },
  });
  await expectStatus(res, 201, "PUT manifest");
  await res.body?.cancel();
  return url;
}

function wrkAvailable(): boolean {
  try {
    return new Deno.Command(WRK, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

/** Requests/s from `wrk -t2 -cN -dS`; any non-2xx answer or socket error fails the run. */
async function wrkRun(url: string, seconds: number): Promise<number> {
  const out = await new Deno.Command(WRK, {
    args: ["-t2", `-c${CONNECTIONS}`, `-d${seconds}s`, "-H", `Accept: ${OCI_MANIFEST}`, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const rate = text.match(/Requests\/sec:\s+([\d.]+)/);
  if (!out.success || !rate) throw new Error(`wrk failed:\n${text}`);
  const bad = text.match(/Non-2xx or 3xx responses: (\d+)|Socket errors:[^\n]*/);
  if (bad) throw new Error(`wrk saw errors (${bad[0]}):\n${text}`);
  return Number(rate[1]);
}

/** Requests/s from N concurrent fetch loops for `seconds`. */
async function fetchLoopRun(url: string, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const res = await fetch(url, { headers: { accept: OCI_MANIFEST } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET manifest: ${res.status}`);
      count++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return count / ((performance.now() - start) / 1000);
}

/** Runs `fn` `RUNS` times, logging each value; a failure is recorded and stops the figure. */
async function measure(
  figure: Figure,
  server: Server,
  fn: (run: number) => Promise<number>,
): Promise<Figure> {
  for (let run = 1; run <= RUNS; run++) {
    try {
      const value = await fn(run);
      figure.runs.push(value);
      console.log(
        `  ${server.name} ${figure.label} run ${run}: ${value.toFixed(1)} ${figure.unit}`,
      );
    } catch (err) {
      figure.error = err instanceof Error ? err.message : String(err);
      console.log(`  ${server.name} ${figure.label} run ${run}: FAILED ${figure.error}`);
      break;
    }
  }
  return figure;
}

async function benchServer(server: Server, blob: Blob, useWrk: boolean): Promise<Figure[]> {
  const mib = blob.size / MIB;
  const figures: Figure[] = [];
  figures.push(
    await measure(
      { label: `monolithic push ${mib} MiB (fetch)`, unit: "MB/s", runs: [] },
      server,
      (run) => monolithicPush(server, `bench/mono${run}`, blob),
    ),
  );
  if (curlAvailable()) {
    figures.push(
      await measure(
        { label: `monolithic push ${mib} MiB (curl -T)`, unit: "MB/s", runs: [] },
        server,
        (run) => curlPush(server, `bench/curl${run}`, blob),
      ),
    );
  }
  // Pull from the repository of the first successful monolithic push.
  figures.push(
    await measure(
      { label: `blob pull ${mib} MiB`, unit: "MB/s", runs: [] },
      server,
      () => pull(server, "bench/mono1", blob),
    ),
  );
  figures.push(
    await measure(
      { label: `chunked push ${mib} MiB (8 MiB chunks)`, unit: "MB/s", runs: [] },
      server,
      (run) => chunkedPush(server, `bench/chunked${run}`, blob),
    ),
  );
  const label = `manifest GET, ${CONNECTIONS} conns (${useWrk ? "wrk" : "fetch loop"})`;
  let manifestUrl: string | undefined;
  try {
    manifestUrl = await pushSmallImage(server, "bench/small");
    // A short warm-up so both servers start the measured runs with open connections and JIT.
    await (useWrk ? wrkRun(manifestUrl, 2) : fetchLoopRun(manifestUrl, 2));
  } catch (err) {
    figures.push({ label, unit: "req/s", runs: [], error: String(err) });
    console.log(`  ${server.name} ${label}: FAILED ${err}`);
  }
  if (manifestUrl) {
    const url = manifestUrl;
    figures.push(
      await measure(
        { label, unit: "req/s", runs: [] },
        server,
        () => useWrk ? wrkRun(url, SECONDS) : fetchLoopRun(url, SECONDS),
      ),
    );
  }
  return figures;
}

function formatValue(value: number): string {
  return Number.isNaN(value) ? "failed" : value.toFixed(1);
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
  const widths = header.map((_, c) => Math.max(...[header, ...rows].map((row) => row[c].length)));
  const line = (row: string[]) =>
    row.map((cell, c) => c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ");
  console.log(`\nMedian of ${RUNS} runs:\n`);
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
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
