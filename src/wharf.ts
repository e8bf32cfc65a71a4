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
import { PluginStore } from "./plugins/database.ts";
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

/** An opened Wharf. */
export interface Wharf {
  config: Config;
  dataDir: string;
  registry: Registry;
  plugins: PluginHost;
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
  const store = await openBlobStore(config.storage, dataDir);
  const metadata = await openMetadataStore(config.metadata, dataDir);
  const plugins = new PluginHost(new PluginStore(join(dataDir, "plugins.db")), log);
  const registry = createRegistry(store, metadata, {
    automaticMount: config.registry.automaticMount,
    deleteEnabled: config.registry.deleteEnabled,
    limits: limitsOf(config),
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
  let running: Promise<GcReport> | null = null;
  const gc = (options: { dryRun?: boolean } = {}) => {
    // One collection at a time: a second request waits for the running one.
    const run = (running ?? Promise.resolve()).catch(() => {}).then(() =>
      collectGarbage(registry, { ...gcOptions, ...options })
    );
    running = run;
    return run;
  };
  return {
    config,
    dataDir,
    registry,
    plugins,
    log,
    gc,
    scheduleGc() {
      if (!config.gc.schedule) return () => {};
      const job = new Cron(config.gc.schedule, { protect: true, timezone: "UTC" }, async () => {
        try {
          const report = await gc();
          metrics.gcRun("success", { bytes: report.bytesFreed, blobs: report.blobsDeleted });
          log.info("gc finished", {
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
      await metadata.close();
      if (store instanceof S3BlobStore) store.close();
      plugins.store.close();
    },
  };
}

/** The blob store the `storage` section names. */
async function openBlobStore(storage: Config["storage"], dataDir: string): Promise<BlobStore> {
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
  });
}

/** The metadata store the `metadata` section names (migrations applied). */
async function openMetadataStore(
  metadata: Config["metadata"],
  dataDir: string,
): Promise<MetadataStore> {
  if (metadata.driver === "sqlite") {
    return SqliteMetadataStore.open(resolve(metadata.path ?? join(dataDir, "wharf.db")));
  }
  const url = metadata.url ?? Deno.env.get(metadata.urlEnv!);
  if (!url) throw new Error(`metadata.urlEnv: ${metadata.urlEnv} is not set`);
  return await PostgresMetadataStore.open(url);
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
