/**
 * A throw-away PostgreSQL 15 cluster for tests and benchmarks: `initdb` on a temporary
 * directory, `pg_ctl start` on a free loopback port, `pg_ctl stop` and removal at the end.
 * PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` system user
 * (`runuser -u postgres --`), which owns the data directory.
 * @module
 */

/** Where Debian's `postgresql-15` puts the server binaries; `WHARF_PG_BIN` overrides it. */
const BIN_DIR = Deno.env.get("WHARF_PG_BIN") ?? "/usr/lib/postgresql/15/bin";

/** A running cluster. */
export interface PostgresCluster {
  /** Connection URL of the `postgres` database, as superuser `postgres` (trust auth). */
  url: string;
  port: number;
  /** A URL for another database of the cluster. */
  urlFor(database: string): string;
  /**
   * Stops the server (fast shutdown: open connections are closed) but keeps its data
   * directory and port, for fault tests; {@link PostgresCluster.restart} brings it back.
   */
  pause(): Promise<void>;
  /** Starts a paused server again on the same data directory and port. */
  restart(): Promise<void>;
  /** SIGSTOPs the server and its backends: connections stay open, nothing answers. */
  freeze(): Promise<void>;
  /** SIGCONTs what {@link PostgresCluster.freeze} stopped. */
  thaw(): Promise<void>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartOptions {
  /** Keep `fsync` on (benchmarks); tests turn it off for speed. Default false. */
  durable?: boolean;
}

/**
 * Why PostgreSQL tests cannot run here, or null when they can.
 *
 * @example
 * ```ts
 * const skip = postgresUnavailableReason();
 * Deno.test({ name: "pg", ignore: skip !== null, fn: async () => {} });
 * ```
 */
export function postgresUnavailableReason(): string | null {
  try {
    Deno.statSync(`${BIN_DIR}/initdb`);
    Deno.statSync(`${BIN_DIR}/pg_ctl`);
  } catch {
    return `postgresql-15 is not installed (no ${BIN_DIR}/initdb); ` +
      "run `apt-get install -y postgresql-15` to run these tests";
  }
  if (Deno.uid() === 0) {
    try {
      Deno.statSync("/usr/sbin/runuser");
    } catch {
      return "running as root without runuser: cannot start PostgreSQL as the postgres user";
    }
  }
  return null;
}

/** Starts a fresh cluster on a free loopback port; about 1.5 s. */
export async function startPostgres(options: StartOptions = {}): Promise<PostgresCluster> {
  const reason = postgresUnavailableReason();
  if (reason) throw new Error(reason);
  const dir = await Deno.makeTempDir({ prefix: "wharf-pg-" });
  const data = `${dir}/data`;
  if (Deno.uid() === 0) await run(["chown", "-R", "postgres:postgres", dir], false);
  await run([
    `${BIN_DIR}/initdb`,
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  let lastError: unknown;
  // A port found free may be taken before the server binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freePort();
    const settings = [
      "-c listen_addresses=127.0.0.1",
      `-p ${port}`,
      `-k ${dir}`,
      "-c max_connections=200",
      ...(options.durable ? [] : ["-c fsync=off", "-c synchronous_commit=off"]),
    ].join(" ");
    const start = () =>
      run([
        `${BIN_DIR}/pg_ctl`,
        "-D",
        data,
        "-l",
        `${dir}/server.log`,
        "-w",
        "-t",
        "30",
        "-o",
        settings,
        "start",
      ]);
    try {
      await start();
      const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
      return {
        url: urlFor("postgres"),
        port,
        urlFor,
        pause: () => run([`${BIN_DIR}/pg_ctl`, "-D", data, "-m", "fast", "-w", "stop"]),
        restart: start,
        freeze: () => signalServer(data, "SIGSTOP"),
        thaw: () => signalServer(data, "SIGCONT"),
        stop: async () => {
          await run([`${BIN_DIR}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"])
            .catch(() => {});
          await Deno.remove(dir, { recursive: true });
        },
      };
    } catch (err) {
      lastError = err;
    }
  }
  const log = await Deno.readTextFile(`${dir}/server.log`).catch(() => "");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw new Error(`PostgreSQL did not start: ${lastError}\n${log.slice(-2000)}`);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs a command (as the postgres user when root), throwing with its output on failure. */
async function run(argv: string[], asPostgres = true): Promise<void> {
  const full = asPostgres && Deno.uid() === 0 ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const output = await new Deno.Command(full[0], {
    args: full.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
  }).output();
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
    throw new Error(`${argv[0].split("/").pop()} failed (${output.code}): ${text.trim()}`);
  }
}

/** Sends `signal` to the postmaster of `data` and to every process it started. */
async function signalServer(data: string, signal: Deno.Signal): Promise<void> {
  const postmaster = Number((await Deno.readTextFile(`${data}/postmaster.pid`)).split("\n")[0]);
  const children = new TextDecoder().decode(
    (await new Deno.Command("pgrep", { args: ["-P", String(postmaster)], stdout: "piped" })
      .output()).stdout,
  ).split("\n").filter(Boolean).map(Number);
  for (const pid of [postmaster, ...children]) Deno.kill(pid, signal);
}
