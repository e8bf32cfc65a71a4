/**
 * Test harness: a throw-away single-node Ceph cluster (1 mon + 1 osd, no mgr, auth off) with a
 * RADOS Gateway on a free loopback port, all state in a temp dir, started and stopped by
 * `tests/ceph/rgw-start.sh` / `rgw-stop.sh` (stop kills only the PIDs the cluster wrote).
 * Needs the Debian packages `radosgw ceph-mon ceph-osd` (and curl); {@link cephMissing} says
 * what is absent so a suite can skip with a clear message. When `S3_ENDPOINT` is already set
 * (a server started outside the tests), that server is used and left running.
 * @module
 */
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3BlobStoreOptions } from "../src/storage/s3.ts";

const HERE = import.meta.dirname!;
const BINARIES = ["radosgw", "ceph-mon", "ceph-osd", "monmaptool", "radosgw-admin", "curl"];

/** A running S3 endpoint and how to reach it. */
export interface CephRgw {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Makes a fresh bucket (random suffix) and returns store options for it. */
  bucket(prefix?: string): Promise<S3BlobStoreOptions>;
  /**
   * The radosgw daemon alone, for fault tests (the cluster behind it keeps running). Throws
   * for an external `S3_ENDPOINT`.
   */
  gateway: Gateway;
  /** Stops the cluster and removes its temp dir (no-op for an external endpoint). */
  stop(): Promise<void>;
}

/** Fault controls of the gateway process. */
export interface Gateway {
  /** Kills radosgw (SIGKILL): connections are refused until {@link Gateway.start}. */
  kill(): Promise<void>;
  /** Starts radosgw again on the same port; resolves once it answers HTTP. */
  start(): Promise<void>;
  /** SIGSTOP: connections are accepted by the kernel but never answered (a hung server). */
  freeze(): void;
  /** SIGCONT after {@link Gateway.freeze}. */
  thaw(): void;
}

/** Why the Ceph harness cannot run here, or null when it can (or `S3_ENDPOINT` is set). */
export function cephMissing(): string | null {
  if (Deno.env.get("S3_ENDPOINT")) return null;
  const missing = BINARIES.filter((bin) => !onPath(bin));
  if (missing.length === 0) return null;
  return `Ceph RGW not installed (missing ${missing.join(", ")}); ` +
    "apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd curl";
}

/**
 * Starts a cluster (memstore by default: about 2 s; bluestore keeps RAM flat under big data).
 * @example
 * ```ts
 * const rgw = await startCephRgw();
 * try { const store = new S3BlobStore(await rgw.bucket()); } finally { await rgw.stop(); }
 * ```
 */
export async function startCephRgw(
  options: { store?: "memstore" | "bluestore" } = {},
): Promise<CephRgw> {
  const external = Deno.env.get("S3_ENDPOINT");
  if (external) {
    return rgw(
      external,
      {
        accessKeyId: Deno.env.get("AWS_ACCESS_KEY_ID") ?? "",
        secretAccessKey: Deno.env.get("AWS_SECRET_ACCESS_KEY") ?? "",
      },
      Deno.env.get("AWS_REGION") ?? "us-east-1",
      async () => {},
      null,
    );
  }
  const missing = cephMissing();
  if (missing) throw new Error(missing);
  const dir = await Deno.makeTempDir({ prefix: "wharf-ceph-" });
  const stop = async () => {
    await new Deno.Command("bash", {
      args: [join(HERE, "ceph", "rgw-stop.sh"), dir],
      env: { FAST: "1" },
      stdout: "null",
      stderr: "null",
    }).output();
  };
  const out = await new Deno.Command("bash", {
    args: [join(HERE, "ceph", "rgw-start.sh"), dir, options.store ?? "memstore"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    await stop();
    throw new Error(`Ceph RGW failed to start:\n${stderr}`);
  }
  const env = Object.fromEntries(
    new TextDecoder().decode(out.stdout).split("\n")
      .map((line) => line.match(/^export (\w+)=(.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  return rgw(
    env.S3_ENDPOINT,
    {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    },
    env.AWS_REGION ?? "us-east-1",
    stop,
    gatewayOf(dir, env.S3_ENDPOINT),
  );
}

/** Controls of the radosgw that `rgw-start.sh` started in `dir`. */
function gatewayOf(dir: string, endpoint: string): Gateway {
  const pidFile = join(dir, "run", "client.rgw.a.pid");
  const pid = () => Number(Deno.readTextFileSync(pidFile).trim());
  const alive = (p: number) => {
    try {
      // Field 3 of /proc/<pid>/stat is the state; a zombie has exited.
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
    } catch {
      return false;
    }
  };
  return {
    async kill() {
      const p = pid();
      Deno.kill(p, "SIGCONT");
      Deno.kill(p, "SIGKILL");
      for (let i = 0; i < 100 && alive(p); i++) await delay(50);
      if (alive(p)) throw new Error(`radosgw ${p} did not exit`);
    },
    async start() {
      const out = await new Deno.Command("radosgw", {
        args: ["-c", join(dir, "ceph.conf"), "-n", "client.rgw.a"],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(`radosgw: ${new TextDecoder().decode(out.stderr)}`);
      for (let i = 0; i < 300; i++) {
        try {
          await (await fetch(endpoint)).body?.cancel();
          return;
        } catch {
          await delay(100);
        }
      }
      throw new Error(`radosgw did not answer at ${endpoint} after a restart`);
    },
    freeze: () => Deno.kill(pid(), "SIGSTOP"),
    thaw: () => Deno.kill(pid(), "SIGCONT"),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function rgw(
  endpoint: string,
  credentials: CephRgw["credentials"],
  region: string,
  stop: () => Promise<void>,
  gateway: Gateway | null,
): CephRgw {
  const external = () => {
    throw new Error("gateway faults need the test's own Ceph (S3_ENDPOINT is set)");
  };
  return {
    gateway: gateway ?? { kill: external, start: external, freeze: external, thaw: external },
    endpoint,
    region,
    credentials,
    bucket: (prefix = "wharf") => createBucket({ endpoint, region, credentials }, prefix),
    stop,
  };
}

function onPath(bin: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((dir) => {
    try {
      return Deno.statSync(join(dir, bin)).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The `storage` section of a Wharf config for a bucket of {@link CephRgw.bucket} (key prefix
 * `registry`), with `extra` keys such as `redirect` or `requestTimeout`.
 */
export function s3StorageConfig(
  bucket: S3BlobStoreOptions,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    driver: "s3",
    endpoint: bucket.endpoint,
    bucket: bucket.bucket,
    region: bucket.region,
    prefix: "registry",
    credentials: {
      accessKeyId: bucket.credentials!.accessKeyId,
      secretAccessKey: bucket.credentials!.secretAccessKey,
    },
    ...extra,
  };
}

/**
 * Creates a fresh bucket on the S3 server at `server.endpoint` and returns store options for it
 * (path-style, key prefix `prefix`); shared by the Ceph and Swift harnesses.
 */
export async function createBucket(
  server: { endpoint: string; region: string; credentials: CephRgw["credentials"] },
  prefix: string,
): Promise<S3BlobStoreOptions> {
  const bucket = `wharf-test-${crypto.randomUUID().slice(0, 8)}`;
  const client = new S3Client({
    ...server,
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return { ...server, bucket, prefix, forcePathStyle: true };
}
