/**
 * The two ends of `wharf migrate`, each named by a normal Wharf config: the source stores and
 * plugin database (opened for reading, never created) and the target Wharf (opened whole,
 * plugins included, so that what is written goes through its registry service). Also tells when
 * both configs name the same store.
 * @module
 */
import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import { KeyedLock } from "../concurrency/keyed_lock.ts";
import type { Logger } from "../log/logger.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { PostgresMetadataStore } from "../metadata/postgres.ts";
import type { PluginStore } from "../plugins/database.ts";
import { PostgresPluginStore } from "../plugins/postgres_database.ts";
import { SqlitePluginStore } from "../plugins/sqlite_database.ts";
import type { BlobStore } from "../storage/blob_store.ts";
import { S3BlobStore } from "../storage/s3.ts";
import { openBlobStore, openMetadataStore, openWharf, type Wharf } from "../wharf.ts";

/** Where a config keeps its bytes and its names, as comparable strings without secrets. */
export interface StoreIdentity {
  blobs: string;
  metadata: string;
}

/** The source's stores, opened for reading. */
export interface SourceStores {
  store: BlobStore;
  metadata: MetadataStore;
  /** The plugins' tables: null when a single node never wrote a `plugins.db`. */
  plugins: PluginStore | null;
  close(): Promise<void>;
}

/**
 * Which stores a config names, e.g. `{ blobs: "filesystem /srv/wharf", metadata: "postgres
 * db:5432/wharf" }`; paths resolved (symlinks too), URLs without credentials.
 */
export function storeIdentity(config: Config): StoreIdentity {
  const data = resolve(config.data);
  const storage = config.storage;
  const blobs = storage.driver === "filesystem"
    ? `filesystem ${canonicalPath(storage.path ?? data)}`
    : `s3 ${storage.endpoint ?? "aws"} ${storage.bucket}/${
      storage.prefix.replace(/^\/+|\/+$/g, "")
    }`;
  const metadata = config.metadata.driver === "sqlite"
    ? `sqlite ${canonicalPath(config.metadata.path ?? join(data, "wharf.db"))}`
    : `postgres ${postgresLocation(postgresUrl(config.metadata))}`;
  return { blobs, metadata };
}

/** Why `from` and `to` cannot be migrated between (a store they share), or null. */
export function sameStoreProblem(from: Config, to: Config): string | null {
  const a = storeIdentity(from);
  const b = storeIdentity(to);
  if (a.metadata === b.metadata) {
    return `source and target are the same metadata store (${a.metadata}): nothing to migrate`;
  }
  if (a.blobs === b.blobs) {
    return `source and target share one blob store (${a.blobs}); migrate needs a separate ` +
      "target store (two registries on one store would garbage-collect each other's blobs)";
  }
  return null;
}

/**
 * Opens the source stores without creating anything: a missing data directory or SQLite file
 * is an error, not an empty registry. Both stores are probed, so an unreachable one fails here.
 */
export async function openSource(config: Config): Promise<SourceStores> {
  const data = resolve(config.data);
  if (config.storage.driver === "filesystem") {
    const blobs = join(resolve(config.storage.path ?? data), "blobs");
    if (!isDirectory(blobs)) throw new Error(`source blob store: no directory ${blobs}`);
  }
  if (config.metadata.driver === "sqlite") {
    const file = resolve(config.metadata.path ?? join(data, "wharf.db"));
    if (!isFile(file)) throw new Error(`source metadata store: no database file ${file}`);
  }
  const metadata = await labelled(
    "source metadata store",
    () => openMetadataStore(config.metadata, data),
  );
  let store: BlobStore | undefined;
  let plugins: PluginStore | null = null;
  try {
    store = await labelled(
      "source blob store",
      () => openBlobStore(config.storage, data, new KeyedLock()),
    );
    await labelled("source blob store", () => store!.listUploads());
    await labelled("source metadata store", () => metadata.allRepositories());
    plugins = await labelled("source plugin database", () => openSourcePlugins(metadata, data));
  } catch (err) {
    if (store instanceof S3BlobStore) store.close();
    await metadata.close();
    throw err;
  }
  const opened = store;
  return {
    store: opened,
    metadata,
    plugins,
    async close() {
      await plugins?.close();
      await metadata.close();
      if (opened instanceof S3BlobStore) opened.close();
    },
  };
}

/**
 * The source's plugin database where `openWharf` keeps it (read through the plugin store, which
 * finds its own tables there), or null when a single node has no `plugins.db`.
 */
async function openSourcePlugins(
  metadata: MetadataStore,
  data: string,
): Promise<PluginStore | null> {
  if (metadata instanceof PostgresMetadataStore) {
    return await PostgresPluginStore.open(metadata.sql);
  }
  const file = join(data, "plugins.db");
  return isFile(file) ? new SqlitePluginStore(file) : null;
}

/** Opens the target as `wharf serve` would (stores, plugins, registry) and probes its stores. */
export async function openTarget(config: Config, log: Logger): Promise<Wharf> {
  const wharf = await labelled("target", () => openWharf(config, log));
  try {
    await labelled("target blob store", () => wharf.registry.store.listUploads());
    await labelled("target metadata store", () => wharf.registry.metadata.allRepositories());
  } catch (err) {
    await wharf.close();
    throw err;
  }
  return wharf;
}

/** Runs `open`, prefixing a failure's message with `what` (one line for the CLI). */
async function labelled<T>(what: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    const message = (err as Error).message.split("\n", 1)[0];
    throw new Error(`${what}: ${message}`, { cause: err });
  }
}

function postgresUrl(metadata: { url?: string; urlEnv?: string }): string {
  const url = metadata.url ?? Deno.env.get(metadata.urlEnv!);
  if (!url) throw new Error(`metadata.urlEnv: ${metadata.urlEnv} is not set`);
  return url;
}

/** `host:port/database` of a PostgreSQL URL (defaults as libpq applies them). */
function postgresLocation(url: string): string {
  try {
    const parsed = new URL(url);
    const user = decodeURIComponent(parsed.username) || "postgres";
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || user;
    return `${parsed.hostname || "localhost"}:${parsed.port || "5432"}/${database}`;
  } catch {
    return "(unparsed URL)";
  }
}

/** The real path; for a file not created yet, its directory's real path and its name. */
function canonicalPath(path: string): string {
  const full = resolve(path);
  for (const [dir, rest] of [[full, ""], [dirname(full), basename(full)]]) {
    try {
      return join(realpathSync(dir), rest);
    } catch {
      // not there (yet): try the parent, else keep the resolved path
    }
  }
  return full;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
