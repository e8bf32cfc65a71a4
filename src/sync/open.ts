/**
 * Opens the mirroring service of an opened Wharf: the history (in PostgreSQL when the metadata
 * is, shared by every process; else `<data>/sync.db`) and a {@link SyncService} that writes
 * through the registry service. Atomic signatures go through the local signatures extension
 * API (a plugin route), served in-process by an app built without authentication that never
 * listens on a socket.
 * @module
 */
import { join } from "node:path";
import type { Hono } from "hono";
import type { AppDeps, AppEnv } from "../http/context.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { PostgresMetadataStore } from "../metadata/postgres.ts";
import type { Wharf } from "../wharf.ts";
import type { SyncHistory } from "./history.ts";
import { PostgresSyncHistory } from "./history_postgres.ts";
import { SqliteSyncHistory } from "./history_sqlite.ts";
import { SyncService } from "./service.ts";
import { PullThrough } from "./pull_through.ts";

/** An opened sync service and how to close it. */
export interface OpenedSync {
  service: SyncService;
  history: SyncHistory;
  /** Stops schedules, waits for running runs, closes the history. */
  close(): Promise<void>;
}

/**
 * The history that goes with `metadata`: its PostgreSQL database (tables created on first use,
 * the store's pool shared), or `<dataDir>/sync.db` for a single node.
 *
 * @example
 * ```ts
 * const history = await openSyncHistory(wharf.registry.metadata, wharf.dataDir);
 * console.log(await history.list({ limit: 5 }));
 * await history.close();
 * ```
 */
export async function openSyncHistory(
  metadata: MetadataStore,
  dataDir: string,
): Promise<SyncHistory> {
  if (metadata instanceof PostgresMetadataStore) {
    return await PostgresSyncHistory.open(metadata.sql);
  }
  return SqliteSyncHistory.open(join(dataDir, "sync.db"));
}

/** Opens the history and the service for `wharf`'s config (not started: call `start()`). */
export async function openSync(
  wharf: Wharf,
  createApp: (deps: AppDeps, operations: { accessLog?: boolean }) => Hono<AppEnv>,
): Promise<OpenedSync> {
  const history = await openSyncHistory(wharf.registry.metadata, wharf.dataDir);
  const local = createApp({
    registry: wharf.registry,
    log: wharf.log,
    plugins: wharf.plugins,
  }, { accessLog: false });
  const extensions = async (request: Request) => await local.fetch(request);
  const service = new SyncService({
    registry: wharf.registry,
    log: wharf.log,
    plugins: wharf.plugins,
    history,
    extensions,
  }, wharf.config.mirrors);
  const pullThrough = new PullThrough(wharf.config.mirrors, {
    registry: wharf.registry,
    dataDir: wharf.dataDir,
    log: wharf.log,
    plugins: wharf.plugins,
    extensions,
  });
  if (pullThrough.enabled) wharf.registry.pullThrough.source = pullThrough;
  return {
    service,
    history,
    async close() {
      await service.stop();
      await pullThrough.close();
      await history.close();
    },
  };
}
