/**
 * Bounded load test (loopback only): a real Wharf (`tests/harness.ts`) under mixed push/pull
 * from N concurrent connections for a fixed time. Reports responses by operation and status,
 * every unexpected answer, throughput, and the server's resident memory (VmRSS) over the run.
 * Not part of the test suite: run it with `./run.sh task load`.
 *
 * Each worker owns one HTTP connection and loops over: pull (70%: GET manifest by tag, GET
 * config and one layer) or push (30%: HEAD each layer, upload the missing ones — a small
 * unique layer plus shared layers, so pushes dedup like real images do — then PUT a manifest).
 *
 * Tunables: `LOAD_SECONDS` (120), `LOAD_CONNECTIONS` (32), `LOAD_REPOS` (8).
 * Exits 1 when any unexpected response or network error was seen.
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import { startRegistry } from "../tests/harness.ts";
import { envInt } from "./figures.ts";
import { OCI_MANIFEST } from "./manifest_load.ts";
import { rssKiB } from "./process_cpu.ts";

const SECONDS = envInt("LOAD_SECONDS", 120);
const CONNECTIONS = envInt("LOAD_CONNECTIONS", 32);
const REPOS = envInt("LOAD_REPOS", 8);
const SHARED_LAYERS = 16;
const LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

interface Blob {
  bytes: Uint8Array<ArrayBuffer>;
  digest: string;
}

function blob(size: number): Blob {
  const bytes = randomFillSync(new Uint8Array(size));
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

/** Counts of responses by `operation status`, and every unexpected one. */
class Tally {
  counts = new Map<string, number>();
  unexpected: string[] = [];
  requests = 0;

  record(operation: string, response: Response | Error, expected: number[]): boolean {
    this.requests++;
    const status = response instanceof Error ? `error ${response.name}` : String(response.status);
    const key = `${operation} ${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const ok = !(response instanceof Error) && expected.includes(response.status);
    if (!ok && this.unexpected.length < 50) {
      this.unexpected.push(`${key}${response instanceof Error ? `: ${response.message}` : ""}`);
    }
    return ok;
  }
}

const registry = await startRegistry();
const base = registry.url;
const pid = registry.process.pid;
const tally = new Tally();
const shared = Array.from({ length: SHARED_LAYERS }, (_, i) => blob(4096 + i * 8192));
const config = blob(256);
/** Tags pushed so far per repository (pulls pick from these). */
const pushed: { repo: string; tag: string; config: Blob; layer: Blob }[] = [];

/** One request on `client`, recorded; the body is read (or dropped) so the connection is reused. */
async function call(
  client: Deno.HttpClient,
  operation: string,
  expected: number[],
  url: string,
  init: RequestInit = {},
): Promise<Response | null> {
  try {
    const response = await fetch(url, { ...init, client });
    await response.arrayBuffer();
    return tally.record(operation, response, expected) ? response : null;
  } catch (err) {
    tally.record(operation, err as Error, expected);
    return null;
  }
}

async function pushBlob(client: Deno.HttpClient, repo: string, b: Blob): Promise<boolean> {
  const head = await call(client, "HEAD blob", [200, 404], `${base}/v2/${repo}/blobs/${b.digest}`, {
    method: "HEAD",
  });
  if (!head) return false;
  if (head.status === 200) return true;
  const start = await call(client, "POST upload", [202], `${base}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
  });
  if (!start) return false;
  const location = new URL(start.headers.get("location")!, base);
  location.searchParams.set("digest", b.digest);
  const put = await call(client, "PUT upload", [201], location.href, {
    method: "PUT",
    body: b.bytes,
    headers: { "Content-Type": "application/octet-stream" },
  });
  return put !== null;
}

async function push(client: Deno.HttpClient, worker: number, round: number): Promise<void> {
  const repo = `load/repo${(worker + round) % REPOS}`;
  const layer = blob(1024 + Math.floor(Math.random() * 31 * 1024));
  const sharedLayer = shared[(worker * 7 + round) % SHARED_LAYERS];
  for (const b of [config, sharedLayer, layer]) {
    if (!await pushBlob(client, repo, b)) return;
  }
  const tag = `w${worker}-r${round}`;
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: config.digest,
      size: config.bytes.length,
    },
    layers: [sharedLayer, layer].map((b) => ({
      mediaType: LAYER_TYPE,
      digest: b.digest,
      size: b.bytes.length,
    })),
  });
  const put = await call(client, "PUT manifest", [201], `${base}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    body: manifest,
    headers: { "Content-Type": OCI_MANIFEST },
  });
  if (put) pushed.push({ repo, tag, config, layer });
}

async function pull(client: Deno.HttpClient): Promise<void> {
  const image = pushed[Math.floor(Math.random() * pushed.length)];
  const manifest = await call(
    client,
    "GET manifest",
    [200],
    `${base}/v2/${image.repo}/manifests/${image.tag}`,
    { headers: { Accept: OCI_MANIFEST } },
  );
  if (!manifest) return;
  await call(client, "GET blob", [200], `${base}/v2/${image.repo}/blobs/${image.config.digest}`);
  await call(client, "GET blob", [200], `${base}/v2/${image.repo}/blobs/${image.layer.digest}`);
}

async function worker(index: number, deadline: number): Promise<void> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
  try {
    for (let round = 0; performance.now() < deadline; round++) {
      if (pushed.length === 0 || Math.random() < 0.3) await push(client, index, round);
      else await pull(client);
    }
  } finally {
    client.close();
  }
}

try {
  const rssStart = rssKiB(pid);
  const samples: [number, number][] = [[0, rssStart]];
  console.log(
    `load: ${CONNECTIONS} connections, ${SECONDS} s, mixed push (30%) / pull (70%) on ${base}`,
  );
  const began = performance.now();
  const deadline = began + SECONDS * 1000;
  const sampler = setInterval(() => {
    const at = Math.round((performance.now() - began) / 1000);
    samples.push([at, rssKiB(pid)]);
  }, 10_000);
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => worker(i, deadline)));
  clearInterval(sampler);
  const elapsed = (performance.now() - began) / 1000;
  const rssEnd = rssKiB(pid);
  samples.push([Math.round(elapsed), rssEnd]);

  console.log(`\nresponses by operation and status (${elapsed.toFixed(1)} s):`);
  for (const [key, count] of [...tally.counts].sort()) {
    console.log(`  ${key.padEnd(24)} ${count}`);
  }
  console.log(
    `total ${tally.requests} requests, ${(tally.requests / elapsed).toFixed(0)} req/s, ` +
      `${pushed.length} images pushed`,
  );
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  console.log(`server RSS: start ${mib(rssStart)} MiB, end ${mib(rssEnd)} MiB`);
  console.log(`RSS samples (s: MiB): ${samples.map(([s, k]) => `${s}: ${mib(k)}`).join(", ")}`);
  if (tally.unexpected.length > 0) {
    console.log(`UNEXPECTED responses (first ${tally.unexpected.length}):`);
    for (const line of tally.unexpected) console.log(`  ${line}`);
    Deno.exitCode = 1;
  } else {
    console.log("unexpected responses: none");
  }
} finally {
  await registry.close();
}
