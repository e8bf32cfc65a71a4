/**
 * The mirroring service of a running Wharf: one scheduled job per mirror with a schedule, at
 * most one run per mirror at a time (in this process, and across processes through the
 * history), run history, and reloading of the mirror list without a restart.
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { type Progress, runMirror, type RunReport, type SyncDeps } from "./engine.ts";
import type { RunRecord, SyncHistory } from "./history.ts";
import { type Job, schedule } from "./scheduler.ts";
import type { MirrorConfig } from "./schema.ts";
import { metrics } from "../observability/metrics.ts";

/** A mirror as `GET /wharf/v1/sync` shows it. */
export interface MirrorStatus {
  name: string;
  upstream: string;
  schedule: string | null;
  nextRun: string | null;
  running: boolean;
}

/** What the HTTP route reads. */
export interface SyncStatusSource {
  mirrors(): MirrorStatus[];
  runs(options: { mirror?: string; limit?: number }): RunRecord[];
}

/** A run refused because the mirror is already running. */
export class MirrorBusyError extends Error {
  override name = "MirrorBusyError";
}

/** Options of {@link SyncService.run}. */
export interface ServiceRunOptions {
  trigger?: string;
  onProgress?: (progress: Progress) => void;
}

/** Runs and schedules mirrors. */
export class SyncService implements SyncStatusSource {
  #mirrors: MirrorConfig[];
  #jobs = new Map<string, Job>();
  #running = new Map<string, { promise: Promise<RunReport>; abort: AbortController }>();
  readonly #deps: SyncDeps & { history: SyncHistory };
  readonly #log: Logger;

  constructor(deps: SyncDeps & { history: SyncHistory }, mirrors: MirrorConfig[]) {
    this.#deps = deps;
    this.#log = deps.log.with({ component: "sync" });
    this.#mirrors = mirrors;
  }

  /** The configured mirrors. */
  get config(): readonly MirrorConfig[] {
    return this.#mirrors;
  }

  /** Starts the scheduled jobs. */
  start(): void {
    for (const mirror of this.#mirrors) {
      if (!mirror.schedule) continue;
      try {
        this.#jobs.set(
          mirror.name,
          schedule(mirror.schedule, async () => {
            await this.run(mirror.name, { trigger: "schedule" }).catch((err) => {
              this.#log.warn("scheduled run not started", {
                mirror: mirror.name,
                error: String(err.message ?? err),
              });
            });
          }),
        );
      } catch (err) {
        this.#log.error("bad schedule", { mirror: mirror.name, error: String(err) });
      }
    }
    if (this.#jobs.size > 0) {
      this.#log.info("mirror schedules started", { mirrors: [...this.#jobs.keys()] });
    }
  }

  /**
   * Replaces the mirror list (config reload): jobs are rebuilt, running runs finish with the
   * config they started with.
   */
  reload(mirrors: MirrorConfig[]): void {
    this.#stopJobs();
    this.#mirrors = mirrors;
    this.start();
    this.#log.info("mirrors reloaded", { mirrors: mirrors.map((m) => m.name) });
  }

  /** Runs mirror `name` now; throws {@link MirrorBusyError} when it is already running. */
  async run(name: string, options: ServiceRunOptions = {}): Promise<RunReport> {
    const mirror = this.#mirrors.find((m) => m.name === name);
    if (!mirror) throw new Error(`no mirror named "${name}"`);
    if (this.#running.has(name)) throw new MirrorBusyError(`mirror ${name} is already running`);
    const history = this.#deps.history;
    const begun = history.begin(name, options.trigger ?? "manual");
    if ("busy" in begun) {
      throw new MirrorBusyError(`mirror ${name} is already running in process ${begun.busy}`);
    }
    const abort = new AbortController();
    const promise = (async () => {
      try {
        const report = await runMirror(this.#deps, mirror, {
          onProgress: options.onProgress,
          signal: abort.signal,
        });
        history.finish(begun.id, report.outcome, report, report.errors);
        metrics.syncRun(name, report.outcome === "failed" ? "failure" : report.outcome);
        return report;
      } catch (err) {
        const zero = {
          images: 0,
          unchanged: 0,
          skipped: 0,
          attachments: 0,
          blobs: 0,
          bytes: 0,
          retries: 0,
          deleted: 0,
        };
        history.finish(begun.id, "failed", zero, [String((err as Error).message ?? err)]);
        metrics.syncRun(name, "failure");
        throw err;
      } finally {
        this.#running.delete(name);
      }
    })();
    this.#running.set(name, { promise, abort });
    return await promise;
  }

  mirrors(): MirrorStatus[] {
    return this.#mirrors.map((m) => ({
      name: m.name,
      upstream: m.upstream,
      schedule: m.schedule ?? null,
      nextRun: this.#jobs.get(m.name)?.nextRun()?.toISOString() ?? null,
      running: this.#running.has(m.name),
    }));
  }

  runs(options: { mirror?: string; limit?: number } = {}): RunRecord[] {
    return this.#deps.history.list(options);
  }

  #stopJobs(): void {
    for (const job of this.#jobs.values()) job.stop();
    this.#jobs.clear();
  }

  /** Stops the schedules, asks running runs to stop after their current images, waits for them. */
  async stop(): Promise<void> {
    this.#stopJobs();
    for (const { abort } of this.#running.values()) abort.abort();
    await Promise.allSettled([...this.#running.values()].map((r) => r.promise));
  }
}
