/**
 * Opens the mirroring service of an opened Wharf: the history in `<data>/sync.db` and a
 * {@link SyncService} that writes through the registry service. Atomic signatures go through
 * the local signatures extension API (a plugin route), served in-process by an app built
 * without authentication that never listens on a socket.
 * @module
 */
import { join } from "node:path";
import type { Hono } from "hono";
import type { AppDeps, AppEnv } from "../http/context.ts";
import type { Wharf } from "../wharf.ts";
import { SyncHistory } from "./history.ts";
import { SyncService } from "./service.ts";
import { PullThrough } from "./pull_through.ts";

/** An opened sync service and how to close it. */
export interface OpenedSync {
  service: SyncService;
  history: SyncHistory;
  /** Stops schedules, waits for running runs, closes the history. */
  close(): Promise<void>;
}

/** Opens the history and the service for `wharf`'s config (not started: call `start()`). */
export function openSync(
  wharf: Wharf,
  createApp: (deps: AppDeps, operations: { accessLog?: boolean }) => Hono<AppEnv>,
): OpenedSync {
  const history = SyncHistory.open(join(wharf.dataDir, "sync.db"));
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
      history.close();
    },
  };
}
