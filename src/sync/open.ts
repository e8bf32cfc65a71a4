/**
 * Opens the mirroring service of an opened Wharf: the history (in PostgreSQL when the metadata
 * is, shared by every process; else `<data>/sync.db`) and a {@link SyncService} that writes
 * through the registry service. Atomic signatures go through the local signatures extension
 * API (a plugin route), served in-process by an app built without authentication that never
 * listens on a socket. A reload (SIGHUP) rebuilds pull-through too.
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
import { PullThrough, type PullThroughDeps } from "./pull_through.ts";
import type { MirrorConfig } from "./schema.ts";

/** An opened sync service and how to close it. */
export interface OpenedSync {
  service: SyncService;
  history: SyncHistory;
  /**
   * Takes a new mirror list (SIGHUP, `wharf sync reload`): pull-through first (if that throws,
   * the schedules stay as they were too), then the service's schedules.
   */
  reload(mirrors: MirrorConfig[]): void;
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
  const pullThrough = new PullThroughMirrors(wharf, {
    registry: wharf.registry,
    dataDir: wharf.dataDir,
    log: wharf.log,
    plugins: wharf.plugins,
    extensions,
  });
  const service = new SyncService({
    registry: wharf.registry,
    log: wharf.log,
    plugins: wharf.plugins,
    history,
    extensions,
  }, wharf.config.mirrors);
  return {
    service,
    history,
    reload(mirrors) {
      pullThrough.reload(mirrors);
      service.reload(mirrors);
    },
    async close() {
      await service.stop();
      await pullThrough.close();
      await history.close();
    },
  };
}

/**
 * The registry's pull-through source, rebuilt from the mirror list on a reload: misses go to
 * the new one at once, while the old one finishes its calls and downloads, then closes.
 */
class PullThroughMirrors {
  readonly #wharf: Wharf;
  readonly #deps: PullThroughDeps;
  #current: PullThrough;
  /** Replaced instances still finishing their work. */
  readonly #retiring = new Set<Promise<void>>();

  constructor(wharf: Wharf, deps: PullThroughDeps) {
    this.#wharf = wharf;
    this.#deps = deps;
    this.#current = this.#install(wharf.config.mirrors);
  }

  #install(mirrors: MirrorConfig[]): PullThrough {
    const pullThrough = new PullThrough(mirrors, this.#deps);
    this.#wharf.registry.pullThrough.source = pullThrough.enabled ? pullThrough : undefined;
    return pullThrough;
  }

  /** Serves misses from `mirrors` from now on (credentials and CA files read again). */
  reload(mirrors: MirrorConfig[]): void {
    const previous = this.#current;
    this.#current = this.#install(mirrors);
    const closing = previous.close().catch((err) =>
      this.#deps.log.warn("closing the replaced pull-through failed", { error: String(err) })
    );
    this.#retiring.add(closing);
    closing.finally(() => this.#retiring.delete(closing));
    this.#deps.log.info("pull-through mirrors reloaded", {
      mirrors: mirrors.filter((m) => m.pullThrough).map((m) => m.name),
    });
  }

  /** Waits for every instance's work, then closes them. */
  async close(): Promise<void> {
    await this.#current.close();
    await Promise.all([...this.#retiring]);
  }
}
