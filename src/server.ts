/**
 * Starts and stops a whole Wharf: opens the stores, builds the registry and the HTTP app, and
 * serves it. Shared by `wharf serve` and in-process tests.
 * @module
 */
import { join } from "node:path";
import type { Config } from "./config/schema.ts";
import { createApp } from "./http/app.ts";
import { BodyDrain } from "./observability/drain.ts";
import { createAuthenticator } from "./auth/from_config.ts";
import type { PluginHost } from "./plugins/host.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import type { Registry } from "./registry/registry.ts";
import { openWharf, type Wharf } from "./wharf.ts";
import { openSync } from "./sync/open.ts";

/** How long shutdown waits for request bodies still coming in (uploads) before cutting them. */
const DRAIN_MS = 60_000;

/** A running Wharf. */
export interface RunningServer {
  /** The URL it listens on (with the real port when the config asked for port 0). */
  url: string;
  wharf: Wharf;
  registry: Registry;
  plugins: PluginHost;
  log: Logger;
  /** Re-reads the config's `mirrors` (what SIGHUP does when `reloadConfig` was given). */
  reload(): Promise<void>;
  /** Stops accepting connections, waits for in-flight requests, closes the stores. */
  shutdown(): Promise<void>;
}

/** Opens the stores named by `config` and serves the registry. */
export async function startServer(
  config: Config,
  log?: Logger,
  options: { reloadConfig?: () => Promise<Config> } = {},
): Promise<RunningServer> {
  const logger = log ?? createLogger({ level: config.log.level });
  const wharf = await openWharf(config, logger);
  const { registry, plugins, dataDir } = wharf;
  const authenticator = await createAuthenticator(config, wharf.coordination);
  const sync = await openSync(wharf, createApp);
  const drain = new BodyDrain();
  const app = createApp({
    registry,
    log: logger,
    plugins,
    sync: sync.service,
    auth: {
      authenticator,
      challenge: {
        service: config.auth?.token.service ?? "wharf",
        realm: config.auth?.token.realm,
      },
    },
  }, { accessLog: config.log.access, publicMetrics: config.metrics.public, drain });

  const separator = config.listen.lastIndexOf(":");
  const hostname = config.listen.slice(0, separator).replace(/^\[|\]$/g, "") || "0.0.0.0";
  const port = Number(config.listen.slice(separator + 1));
  const tls = config.tls
    ? { cert: await readPem(config.tls.cert), key: await readPem(config.tls.key) }
    : {};
  const server = Deno.serve({ hostname, port, onListen: () => {}, ...tls }, app.fetch);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `${config.tls ? "https" : "http"}://${host}:${addr.port}`;
  logger.info("listening", { url, data: dataDir, auth: authenticator.mode });
  const stopGc = wharf.scheduleGc();
  sync.service.start();
  const reload = async () => {
    if (!options.reloadConfig) return;
    try {
      sync.reload((await options.reloadConfig()).mirrors);
    } catch (err) {
      logger.error("config reload failed; keeping the running config", {
        error: (err as Error).message,
      });
    }
  };
  if (options.reloadConfig) Deno.addSignalListener("SIGHUP", reload);
  const pidFile = join(dataDir, "wharf.pid");
  await Deno.writeTextFile(pidFile, `${Deno.pid}\n`);

  let stopping: Promise<void> | undefined;
  return {
    url,
    wharf,
    registry,
    plugins,
    log: logger,
    reload,
    shutdown() {
      // Once, however often asked: `deno task` and the process group both deliver SIGTERM.
      stopping ??= (async () => {
        // Uploads in progress finish first: see src/observability/drain.ts.
        const drained = drain.drain(DRAIN_MS);
        stopGc();
        if (options.reloadConfig) Deno.removeSignalListener("SIGHUP", reload);
        await sync.close();
        if (!await drained) logger.warn("uploads still running after the drain period; cut off");
        await server.shutdown();
        await wharf.close();
        await Deno.remove(pidFile).catch(() => {});
        logger.info("stopped");
      })();
      return stopping;
    },
  };
}

async function readPem(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`cannot read TLS file ${path}: ${(err as Error).message}`);
  }
}
