/**
 * The benchmarks' blob client: a random blob file, a monolithic push (Deno fetch streaming the
 * file, or curl `-T`) and a pull (Deno fetch consuming the stream, or curl), each timed in MB/s.
 * Plain HTTP, no registry code.
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";

const MIB = 1 << 20;

/** A blob written to a file, with its digest. */
export interface BlobFile {
  path: string;
  digest: string;
  size: number;
}

/** Megabytes (10^6 bytes) per second for `bytes` moved in `ms` milliseconds. */
export function megabytesPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** Writes `size` random bytes to a file in `dir` in 8 MiB pieces, hashing as it goes. */
export async function generateBlob(dir: string, size: number): Promise<BlobFile> {
  const path = join(dir, "blob.bin");
  const hash = createHash("sha256");
  const buffer = new Uint8Array(8 * MIB);
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
export async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${await res.text()}`);
  }
}

/** POST an upload session on the registry at `base`; returns its Location. */
export async function startUpload(base: string, repo: string): Promise<URL> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await expectStatus(res, 202, "POST upload");
  await res.body?.cancel();
  return new URL(res.headers.get("location")!, base);
}

/** PUT `?digest=` closing the session at `location`, with an optional last body. */
export async function finishUpload(
  location: URL,
  blob: Pick<BlobFile, "digest">,
  body?: BodyInit,
): Promise<void> {
  location.searchParams.set("digest", blob.digest);
  const res = await fetch(location, {
    method: "PUT",
    body,
    headers: { "content-type": "application/octet-stream" },
  });
  await expectStatus(res, 201, `PUT ${location.host} upload`);
  await res.body?.cancel();
  const digest = res.headers.get("docker-content-digest");
  if (digest !== null && digest !== blob.digest) {
    throw new Error(`PUT returned digest ${digest}, expected ${blob.digest}`);
  }
}

/** POST then one PUT whose body streams from the file (Deno's fetch sends it chunked); MB/s. */
export async function monolithicPush(base: string, repo: string, blob: BlobFile): Promise<number> {
  const start = performance.now();
  const location = await startUpload(base, repo);
  const file = await Deno.open(blob.path);
  await finishUpload(location, blob, file.readable);
  return megabytesPerSecond(blob.size, performance.now() - start);
}

/**
 * The same monolithic push with curl sending the PUT body (with Content-Length), as a
 * cross-check that a figure measures the server and not Deno's fetch upload path; MB/s.
 */
export async function curlPush(base: string, repo: string, blob: BlobFile): Promise<number> {
  const start = performance.now();
  const location = await startUpload(base, repo);
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

/** Whether a `curl` binary runs here. */
export function curlAvailable(): boolean {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** GET the blob and count the bytes of the body stream; MB/s. */
export async function pull(base: string, repo: string, blob: BlobFile): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${base}/v2/${repo}/blobs/${blob.digest}`);
  await expectStatus(res, 200, "GET blob");
  let received = 0;
  for await (const chunk of res.body!) received += chunk.length;
  const ms = performance.now() - start;
  if (received !== blob.size) throw new Error(`GET blob: ${received} bytes, expected ${blob.size}`);
  return megabytesPerSecond(blob.size, ms);
}

/**
 * The same pull with curl writing to /dev/null: a client that costs far less CPU than Deno's
 * fetch, for when the client shares the cores with the servers; MB/s.
 */
export async function curlPull(base: string, repo: string, blob: BlobFile): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_download}",
      `${base}/v2/${repo}/blobs/${blob.digest}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  const written = new TextDecoder().decode(out.stdout);
  if (!out.success || written !== `200 ${blob.size}`) {
    throw new Error(`curl GET blob: ${written}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return megabytesPerSecond(blob.size, ms);
}
