/**
 * Opens a whole Wharf from its config — blob store, metadata, plugins, registry — for
 * `wharf serve` and for the offline commands (`wharf gc`, `wharf scrub`).
 * @module
 */
import { join, resolve } from "node:path";
import { Cron } from "croner";
import type { Config } from "./config/schema.ts";
import { repositoryMatcher } from "./config/globs.ts";
import type { Logger } from "./log/logger.ts";
import { SqliteMetadataStore } from "./metadata/sqlite.ts";
import { SqlitePluginStore } from "./plugins/sqlite_database.ts";
import { PostgresPluginStore } from "./plugins/postgres_database.ts";
import { PluginHost } from "./plugins/host.ts";
import { pluginModules } from "./plugins/loader.ts";
import { collectGarbage, type GcOptions, type GcReport } from "./registry/gc.ts";
import { createRegistry, type Registry } from "./registry/registry.ts";
import type { RetentionRule } from "./registry/retention.ts";
import type { UploadLimits } from "./registry/uploads.ts";
import { FilesystemBlobStore } from "./storage/filesystem.ts";
import { S3BlobStore } from "./storage/s3.ts";
import type { BlobStore } from "./storage/blob_store.ts";
import { PostgresMetadataStore } from "./metadata/postgres.ts";
import type { MetadataStore } from "./metadata/metadata_store.ts";
import { metrics } from "./observability/metrics.ts";
import { type Coordination, LocalCoordination } from "./coordination/coordination.ts";
import { PostgresCoordination } from "./coordination/postgres.ts";
import type { Locks } from "./concurrency/keyed_lock.ts";

const GC_LOCK = "gc";

/** An opened Wharf. */
export interface Wharf {
  config: Config;
  dataDir: string;
  registry: Registry;
  plugins: PluginHost;
  /** Locks, shared values and counters of every process on these stores. */
  coordination: Coordination;
  log: Logger;
  /** Runs garbage collection with the config's grace period, expiry and retention rules. */
  gc(options?: { dryRun?: boolean }): Promise<GcReport>;
  /** Starts the `gc.schedule` job, if any; returns a function that stops it. */
  scheduleGc(): () => void;
  close(): Promise<void>;
}

/** Opens the stores and plugins named by `config`. */
export async function openWharf(config: Config, log: Logger): Promise<Wharf> {
  const dataDir = resolve(config.data);
  await Deno.mkdir(dataDir, { recursive: true });
  const metadata = await openMetadataStore(config.metadata, dataDir);
  const coordination = metadata instanceof PostgresMetadataStore
    ? await PostgresCoordination.open(metadata.sql)
    : new LocalCoordination(dataDir);
  const store = await openBlobStore(config.storage, dataDir, coordination.locks);
  // Plugin tables and the artifact index live with the metadata when processes share it.
  const pluginStore = metadata instanceof PostgresMetadataStore
    ? await PostgresPluginStore.open(metadata.sql)
    : new SqlitePluginStore(join(dataDir, "plugins.db"));
  const plugins = new PluginHost(pluginStore, log);
  const registry = createRegistry(store, metadata, {
    automaticMount: config.registry.automaticMount,
    deleteEnabled: config.registry.deleteEnabled,
    limits: limitsOf(config),
    locks: coordination.locks,
  }, plugins);
  plugins.attach(registry);
  await plugins.load(
    await pluginModules(config.plugins.external, Deno.cwd()),
    config.plugins,
    config.plugins.disabled,
  );
  const gcOptions: GcOptions = {
    gracePeriod: config.gc.gracePeriod,
    uploadExpiry: config.gc.uploadExpiry,
    retention: retentionOf(config),
  };
  // One collection at a time across every process: a second request waits for the running one.
  const gc = (options: { dryRun?: boolean } = {}) =>
    coordination.locks.run(GC_LOCK, () => collectGarbage(registry, { ...gcOptions, ...options }));
  return {
    config,
    dataDir,
    registry,
    plugins,
    coordination,
    log,
    gc,
    scheduleGc() {
      if (!config.gc.schedule) return () => {};
      const job = new Cron(config.gc.schedule, { protect: true, timezone: "UTC" }, async () => {
        try {
          // Every process has the schedule: the one that claims this firing collects for all.
          const tick = Math.round(Date.now() / 1000);
          if (!await coordination.claim(GC_LOCK, tick)) return;
          const outcome = await coordination.locks.tryRun(
            GC_LOCK,
            () => collectGarbage(registry, gcOptions),
          );
          if (!outcome.ran) {
            log.info("gc skipped: another process is collecting", { tick });
            return;
          }
          const report = outcome.value;
          metrics.gcRun("success", { bytes: report.bytesFreed, blobs: report.blobsDeleted });
          log.info("gc finished", {
            tick,
            ...report,
            tagsDeleted: report.tagsDeleted.length,
            manifestsDeleted: report.manifestsDeleted.length,
          });
        } catch (err) {
          metrics.gcRun("failure");
          log.error("gc failed", { error: String(err) });
        }
      });
      return () => job.stop();
    },
    async close() {
      await plugins.store.close();
      await metadata.close();
      if (store instanceof S3BlobStore) store.close();
    },
  };
}

/** The blob store the `storage` section names (`locks` serialise S3 session appends). */
export async function openBlobStore(
  storage: Config["storage"],
  dataDir: string,
  locks: Locks,
): Promise<BlobStore> {
  if (storage.driver === "filesystem") {
    return await FilesystemBlobStore.open(resolve(storage.path ?? dataDir));
  }
  const env = (name: string | undefined) => name === undefined ? undefined : Deno.env.get(name);
  const accessKeyId = storage.credentials?.accessKeyId ?? env(storage.credentials?.accessKeyIdEnv);
  const secretAccessKey = storage.credentials?.secretAccessKey ??
    env(storage.credentials?.secretAccessKeyEnv);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new Error("storage.credentials: give both the access key id and the secret key");
  }
  return new S3BlobStore({
    endpoint: storage.endpoint,
    bucket: storage.bucket,
    region: storage.region,
    prefix: storage.prefix,
    forcePathStyle: storage.forcePathStyle,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    partSize: storage.partSize,
    locks,
    requestTimeoutMs: storage.requestTimeout,
    redirectExpirySeconds: storage.redirect ? storage.redirectExpiry / 1000 : undefined,
    redirectEndpoint: storage.redirectEndpoint,
  });
}

/** The metadata store the `metadata` section names (migrations applied). */
export async function openMetadataStore(
  metadata: Config["metadata"],
  dataDir: string,
): Promise<MetadataStore> {
  if (metadata.driver === "sqlite") {
    return SqliteMetadataStore.open(resolve(metadata.path ?? join(dataDir, "wharf.db")));
  }
  const url = metadata.url ?? Deno.env.get(metadata.urlEnv!);
  if (!url) throw new Error(`metadata.urlEnv: ${metadata.urlEnv} is not set`);
  return await PostgresMetadataStore.open(url, { statementTimeoutMs: metadata.queryTimeout });
}

function limitsOf(config: Config): (repository: string) => UploadLimits {
  const rules = config.limits.map((rule) => ({
    ...rule,
    matches: repositoryMatcher(rule.repositories),
  }));
  return (repository) => {
    const rule = rules.find((r) => r.matches(repository));
    return rule ? { maxUploadSize: rule.maxUploadSize, quota: rule.quota } : {};
  };
}

function retentionOf(config: Config): RetentionRule[] {
  return config.retention.map((rule) => ({
    matches: repositoryMatcher(rule.repositories),
    keepLast: rule.keepLast,
    keepTags: rule.keepTags === undefined ? undefined : new RegExp(rule.keepTags),
    untaggedAfter: rule.untaggedAfter,
  }));
}
