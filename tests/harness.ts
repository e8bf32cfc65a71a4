/**
 * Starts a real Wharf process (`main.ts serve`) on an ephemeral loopback port for tests and
 * benchmarks, and stops it again. The process is the same one users run; nothing is mocked.
 * @module
 */
import { join } from "node:path";
import { stringify } from "yaml";

/** A running Wharf under test. */
export interface TestRegistry {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `host:port`, as clients such as skopeo want it. */
  host: string;
  /** The data directory (blobs, SQLite database). */
  dataDir: string;
  /** The child process. */
  process: Deno.ChildProcess;
  /** Everything the process wrote to stdout and stderr so far (JSON log lines). */
  logs(): string;
  /** Sends SIGTERM and waits for exit; removes the data directory unless `keepData`. */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Options of {@link startRegistry}. */
export interface StartOptions {
  /** Config file content (an object, written as YAML); `listen` and `storage` are filled in. */
  config?: Record<string, unknown>;
  /** Reuse an existing data directory (e.g. after a restart). */
  dataDir?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Starts `deno run -A main.ts serve --listen 127.0.0.1:0 --data <tmp>` and resolves when it
 * prints its `listening` log line.
 */
export async function startRegistry(options: StartOptions = {}): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "wharf-test-" });
  await Deno.mkdir(dataDir, { recursive: true });
  const args = ["run", "-A", MAIN, "serve", "--listen", "127.0.0.1:0", "--data", dataDir];
  if (options.config) {
    const configPath = join(dataDir, "test-config.yaml");
    await Deno.writeTextFile(configPath, stringify(options.config));
    args.push("--config", configPath);
  }
  const process = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();

  let output = "";
  let resolveUrl: (url: string) => void;
  let rejectUrl: (err: Error) => void;
  const urlPromise = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  const decoder = new TextDecoder();
  let listening = false;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      // Only until the server listens: scanning the whole growing log on every chunk costs the
      // test (or benchmark) process time that grows with the square of the log.
      if (listening) continue;
      const match = output.match(/"msg":"listening"[^\n]*"url":"([^"]+)"/);
      if (match) {
        listening = true;
        resolveUrl(match[1]);
      }
    }
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const exited = process.status.then((status) => {
    rejectUrl(new Error(`wharf exited early (code ${status.code}):\n${output}`));
    return status;
  });
  const timer = setTimeout(() => rejectUrl(new Error(`wharf did not start:\n${output}`)), 30_000);
  let url: string;
  try {
    url = await urlPromise;
  } catch (err) {
    try {
      process.kill("SIGKILL");
    } catch {
      // it exited on its own
    }
    await exited;
    await pumps;
    if (!options.dataDir) await Deno.remove(dataDir, { recursive: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }

  return {
    url,
    host: new URL(url).host,
    dataDir,
    process,
    logs: () => output,
    async close({ keepData = false } = {}) {
      try {
        process.kill("SIGTERM");
      } catch {
        // already exited
      }
      await exited;
      await pumps;
      if (!keepData && !options.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** What a `wharf` command printed, and its exit code. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`main.ts`) with `args` in a process of its own. */
export async function runWharf(
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Writes `<dir>/htpasswd` with bcrypt entries made by `wharf user add`; returns its path. */
export async function writeHtpasswd(dir: string, users: Record<string, string>): Promise<string> {
  const path = join(dir, "htpasswd");
  for (const [user, password] of Object.entries(users)) {
    const add = await runWharf(["user", "add", user, "-f", path], { WHARF_PASSWORD: password });
    if (add.code !== 0) throw new Error(add.stderr);
  }
  return path;
}

/**
 * An `auth` config section with Basic auth (no tokens) and two users: `alice` (password
 * `alice-pw`) may do everything, `reader` (`reader-pw`) may only pull. The htpasswd goes in `dir`.
 */
export async function writerAndReaderAuth(dir: string): Promise<Record<string, unknown>> {
  return {
    htpasswd: await writeHtpasswd(dir, { alice: "alice-pw", reader: "reader-pw" }),
    token: { enabled: false },
    rules: [
      { repositories: ["**"], users: ["alice"], actions: ["*"] },
      { repositories: ["**"], users: ["reader"], actions: ["pull"] },
    ],
  };
}

/** Why Debian's `skopeo` cannot run here, or null when it can. */
export function skopeoMissing(): string | null {
  try {
    const ok = new Deno.Command("skopeo", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
    return ok ? null : "skopeo --version failed";
  } catch {
    return "skopeo is not installed (apt-get install -y skopeo)";
  }
}
