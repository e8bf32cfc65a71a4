/**
 * Test harness: a throw-away single-node OpenStack Swift with the s3api middleware (proxy,
 * account, container and object servers, tempauth, a private memcached) on free loopback ports,
 * all state in a temp dir, started and stopped by `tests/swift/s3-start.sh` / `s3-stop.sh` (stop
 * kills only the PIDs the servers wrote). The second S3 implementation beside Ceph RGW
 * (tests/ceph_rgw.ts): running the S3 suites on both catches reliance on one server's quirks.
 * Needs the Debian packages `swift-proxy swift-object swift-container swift-account memcached`
 * (and curl); {@link swiftMissing} says what is absent so a suite can skip with a clear message.
 *
 * Known Swift 2.30 s3api deviations from S3 (so tests must not expect them): conditional PUT
 * (`If-None-Match: *`) answers 501, a user-metadata value over 256 bytes 500, DeleteObjects
 * wants `Content-MD5`, HEAD sends no `Accept-Ranges`.
 * @module
 */
import { join } from "node:path";
import type { S3BlobStoreOptions } from "../src/storage/s3.ts";

import { createBucket } from "./ceph_rgw.ts";
export { s3StorageConfig } from "./ceph_rgw.ts";

const HERE = import.meta.dirname!;
const BINARIES = [
  "swift-proxy-server",
  "swift-object-server",
  "swift-container-server",
  "swift-account-server",
  "memcached",
  "curl",
];
/** Swift reads its hash prefix/suffix and storage policies from this fixed path. */
const SWIFT_CONF = "/etc/swift/swift.conf";

/** A running Swift s3api endpoint and how to reach it. */
export interface SwiftS3 {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Makes a fresh bucket (random suffix) and returns store options for it. */
  bucket(prefix?: string): Promise<S3BlobStoreOptions>;
  /**
   * Names in `<bucket>+segments`, the Swift container where s3api keeps multipart parts: what
   * S3 calls cannot see, so a leak check (empty once every multipart object is deleted).
   */
  segments(bucket: string): Promise<string[]>;
  /** Stops every server process and removes the temp dir. */
  stop(): Promise<void>;
}

/** Why the Swift harness cannot run here, or null when it can. */
export function swiftMissing(): string | null {
  const missing = BINARIES.filter((bin) => !onPath(bin));
  if (!exists("/usr/bin/python3")) missing.push("/usr/bin/python3");
  if (!exists(SWIFT_CONF)) missing.push(SWIFT_CONF);
  if (missing.length === 0) return null;
  return `Swift s3api not installed (missing ${missing.join(", ")}); apt-get install -y ` +
    "--no-install-recommends swift-proxy swift-object swift-container swift-account memcached curl";
}

/**
 * Starts Swift (about 5–9 s, CPU-bound Python imports): share one per test file.
 * @example
 * ```ts
 * const swift = await startSwiftS3();
 * try { const store = new S3BlobStore(await swift.bucket()); } finally { await swift.stop(); }
 * ```
 */
export async function startSwiftS3(): Promise<SwiftS3> {
  const missing = swiftMissing();
  if (missing) throw new Error(missing);
  const dir = await Deno.makeTempDir({ prefix: "wharf-swift-" });
  let stopped: Promise<void> | undefined;
  // Idempotent, and also right after a failed start: it kills what DIR/run/*.pid names.
  const stop = () =>
    stopped ??= new Deno.Command("bash", {
      args: [join(HERE, "swift", "s3-stop.sh"), dir],
      stdout: "null",
      stderr: "null",
    }).output().then(() => {});
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("bash", {
      args: [join(HERE, "swift", "s3-start.sh"), dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    await stop();
    throw err;
  }
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    await stop();
    throw new Error(`Swift s3api failed to start:\n${stderr}`);
  }
  const env = Object.fromEntries(
    new TextDecoder().decode(out.stdout).split("\n")
      .map((line) => line.match(/^export (\w+)=(.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  const endpoint = env.S3_ENDPOINT;
  const region = env.AWS_REGION ?? "us-east-1";
  const credentials = {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  };
  return {
    endpoint,
    region,
    credentials,
    bucket: (prefix = "wharf") => createBucket({ endpoint, region, credentials }, prefix),
    async segments(bucket) {
      // Swift's own API, authenticated by tempauth with the same account and key.
      const auth = await fetch(`${endpoint}/auth/v1.0`, {
        headers: {
          "X-Auth-User": credentials.accessKeyId,
          "X-Auth-Key": credentials.secretAccessKey,
        },
      });
      await auth.body?.cancel();
      if (!auth.ok) throw new Error(`Swift tempauth: HTTP ${auth.status}`);
      const listing = await fetch(
        `${auth.headers.get("x-storage-url")}/${encodeURIComponent(`${bucket}+segments`)}`,
        { headers: { "X-Auth-Token": auth.headers.get("x-auth-token")!, Accept: "text/plain" } },
      );
      const text = await listing.text();
      if (listing.status === 404) return [];
      if (!listing.ok) throw new Error(`Swift container listing: HTTP ${listing.status} ${text}`);
      return text.split("\n").filter((name) => name !== "");
    },
    stop,
  };
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function onPath(bin: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((dir) => exists(join(dir, bin)));
}
