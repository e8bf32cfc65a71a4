/**
 * Starts the reference registry — CNCF distribution's `docker-registry` binary from the Debian
 * package — on an ephemeral loopback port with a throw-away filesystem store. Used as the
 * comparison point in benchmarks and as an upstream in mirroring tests. When the binary is
 * missing, {@link startDistribution} resolves to `null` so callers can skip.
 * @module
 */
import { join } from "node:path";
import { stringify } from "yaml";

/** Path of the binary: `$DOCKER_REGISTRY`, else the Debian package's `/usr/bin/docker-registry`. */
export const DISTRIBUTION_BINARY = Deno.env.get("DOCKER_REGISTRY") ?? "/usr/bin/docker-registry";

/** A running distribution registry. */
export interface DistributionRegistry {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `host:port`, as clients such as skopeo want it. */
  host: string;
  /** The storage root directory. */
  dataDir: string;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Stops the process and removes its storage and config unless `keepData`. */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Options of {@link startDistribution}. */
export interface DistributionOptions {
  /**
   * Extra configuration merged (deeply) over the defaults, e.g.
   * `{ proxy: { remoteurl: "http://127.0.0.1:5000" } }` for a pull-through cache.
   */
  config?: Record<string, unknown>;
  /** Storage root to reuse (kept on close); a fresh temp directory otherwise. */
  dataDir?: string;
  /** Milliseconds to wait for `GET /v2/` to answer; default 15 s. */
  timeoutMs?: number;
}

/**
 * True when the distribution binary exists and is executable; use it for `ignore:`.
 *
 * @example
 * Deno.test({ name: "…", ignore: !distributionAvailable(), fn: async () => {} });
 */
export function distributionAvailable(): boolean {
  try {
    const info = Deno.statSync(DISTRIBUTION_BINARY);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Starts `docker-registry serve CONFIG.yml` with filesystem storage and deletes enabled, and
 * resolves once `GET /v2/` answers. Resolves to `null` if the binary is absent.
 *
 * @example
 * const upstream = await startDistribution();
 * if (upstream) { await fetch(`${upstream.url}/v2/`); await upstream.close(); }
 */
export async function startDistribution(
  options: DistributionOptions = {},
): Promise<DistributionRegistry | null> {
  if (!distributionAvailable()) return null;
  // The port is found by binding and releasing it, so another process can take it in
  // between; a start that fails is retried on a new port.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(options: DistributionOptions): Promise<DistributionRegistry> {
  const port = freePort();
  const workDir = await Deno.makeTempDir({ prefix: "wharf-distribution-" });
  const dataDir = options.dataDir ?? join(workDir, "storage");
  await Deno.mkdir(dataDir, { recursive: true });
  const config = mergeDeep({
    version: 0.1,
    log: { level: "warn", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true } },
    http: { addr: `127.0.0.1:${port}`, secret: "wharf-test-secret" },
  }, options.config ?? {});
  const configPath = join(workDir, "config.yml");
  await Deno.writeTextFile(configPath, stringify(config));

  const child = new Deno.Command(DISTRIBUTION_BINARY, {
    args: ["serve", configPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const cleanup = async (keepData: boolean) => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await status;
    await pumps;
    // The storage lives inside workDir unless the caller supplied its own.
    if (keepData && !options.dataDir) await Deno.remove(configPath);
    else await Deno.remove(workDir, { recursive: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (exited) {
      await cleanup(false);
      throw new Error(`docker-registry exited early:\n${output}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await cleanup(false);
      throw new Error(`docker-registry did not answer on ${url}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    url,
    host: `127.0.0.1:${port}`,
    dataDir,
    logs: () => output,
    close: ({ keepData = false } = {}) => cleanup(keepData),
  };
}

/** Binds port 0 on loopback, notes the port the kernel chose, and releases it. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function mergeDeep(base: Plain, extra: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    out[key] = isPlain(value) && isPlain(out[key]) ? mergeDeep(out[key] as Plain, value) : value;
  }
  return out;
}
