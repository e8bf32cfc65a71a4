/**
 * Starts and stops a whole Wharf: opens the stores, builds the registry and the HTTP app, and
 * serves it. Shared by `wharf serve` and in-process tests.
 * @module
 */
import { join, resolve } from "node:path";
import type { Config } from "./config/schema.ts";
import { createApp } from "./http/app.ts";
import { createAuthenticator } from "./auth/from_config.ts";
import { PluginHost } from "./plugins/host.ts";
import { PluginStore } from "./plugins/database.ts";
import { pluginModules } from "./plugins/loader.ts";
import { createLogger, type Logger } from "./log/logger.ts";
import { SqliteMetadataStore } from "./metadata/sqlite.ts";
import { createRegistry, type Registry } from "./registry/registry.ts";
import { FilesystemBlobStore } from "./storage/filesystem.ts";

/** A running Wharf. */
export interface RunningServer {
  /** The URL it listens on (with the real port when the config asked for port 0). */
  url: string;
  registry: Registry;
  plugins: PluginHost;
  log: Logger;
  /** Stops accepting connections, waits for in-flight requests, closes the stores. */
  shutdown(): Promise<void>;
}

/** Opens the stores named by `config` and serves the registry. */
export async function startServer(config: Config, log?: Logger): Promise<RunningServer> {
  const logger = log ?? createLogger({ level: config.log.level });
  const dataDir = resolve(config.data);
  await Deno.mkdir(dataDir, { recursive: true });
  const store = await FilesystemBlobStore.open(resolve(config.storage.path ?? dataDir));
  const metadata = SqliteMetadataStore.open(
    resolve(config.metadata.path ?? join(dataDir, "wharf.db")),
  );
  const plugins = new PluginHost(new PluginStore(join(dataDir, "plugins.db")), logger);
  const registry = createRegistry(store, metadata, {
    automaticMount: config.registry.automaticMount,
    deleteEnabled: config.registry.deleteEnabled,
  }, plugins);
  plugins.attach(registry);
  await plugins.load(
    await pluginModules(config.plugins.external, Deno.cwd()),
    config.plugins,
    config.plugins.disabled,
  );
  const authenticator = await createAuthenticator(config, dataDir);
  const app = createApp({
    registry,
    log: logger,
    plugins,
    auth: {
      authenticator,
      challenge: {
        service: config.auth?.token.service ?? "wharf",
        realm: config.auth?.token.realm,
      },
    },
  });

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

  return {
    url,
    registry,
    plugins,
    log: logger,
    async shutdown() {
      await server.shutdown();
      metadata.close();
      plugins.store.close();
      logger.info("stopped");
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
