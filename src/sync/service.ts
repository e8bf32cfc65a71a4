/**
 * The mirroring service of a running Wharf: one scheduled job per mirror with a schedule, at
 * most one run per mirror at a time (in this process, and across processes through the
 * history), one run per scheduled tick across every process that runs the same schedule, run
 * history, and reloading of the mirror list without a restart.
 * @module
 */
import { hostname } from "node:os";
import type { Logger } from "../log/logger.ts";
import { type Progress, runMirror, type RunReport, type SyncDeps } from "./engine.ts";
import { noCounts, type RunCounts, type RunRecord, type SyncHistory } from "./history.ts";
import { type Job, schedule } from "./scheduler.ts";
import type { MirrorConfig } from "./schema.ts";
import { metrics } from "../observability/metrics.ts";

/** A mirror as `GET /wharf/v1/sync` shows it. */
export interface MirrorStatus {
  name: string;
  upstream: string;
  schedule: string | null;
  nextRun: string | null;
  /** A run of it is live, in this process or another one sharing the history. */
  running: boolean;
}

/** What the `/wharf/v1/sync` routes read and start. */
export interface SyncApi {
  mirrors(): Promise<MirrorStatus[]>;
  runs(options: { mirror?: string; limit?: number }): Promise<RunRecord[]>;
  /** One run by id, or null. */
  findRun(id: number): Promise<RunRecord | null>;
  /** The configured mirror named `name`, if any. */
  mirror(name: string): MirrorConfig | undefined;
  /** Starts a run in the background; resolves with its id once the history holds it. */
  requestRun(name: string, trigger: string): Promise<number>;
}

/** The live run that keeps a mirror busy. */
export interface LiveRun {
  id: number;
  host: string;
  pid: number;
}

/** A run refused because the mirror is already running; `running` names that run when known. */
export class MirrorBusyError extends Error {
  override name = "MirrorBusyError";
  readonly running?: LiveRun;

  constructor(message: string, running?: LiveRun) {
    super(message);
    this.running = running;
  }
}

/** A run asked for a mirror the configuration does not name. */
export class UnknownMirrorError extends Error {
  override name = "UnknownMirrorError";
}

/** A scheduled run not started because another process claimed its tick first. */
export class TickTakenError extends Error {
  override name = "TickTakenError";
}

/** Options of {@link SyncService.run}. */
export interface ServiceRunOptions {
  trigger?: string;
  /** The scheduled tick this run is for (claimed once across processes). */
  tick?: Date;
  onProgress?: (progress: Progress) => void;
  /** Called once the history holds the run, with its id (before any copying). */
  onBegin?: (id: number) => void;
}

/** Runs and schedules mirrors. */
export class SyncService implements SyncApi {
  #mirrors: MirrorConfig[];
  #jobs = new Map<string, Job>();
  /** Runs of this process, from the claim on (a name here is never claimed twice at once). */
  #running = new Map<
    string,
    { promise: Promise<RunReport>; abort: AbortController; id?: number }
  >();
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
          schedule(mirror.schedule, (tick) => this.#scheduled(mirror.name, tick)),
        );
      } catch (err) {
        this.#log.error("bad schedule", { mirror: mirror.name, error: String(err) });
      }
    }
    if (this.#jobs.size > 0) {
      this.#log.info("mirror schedules started", { mirrors: [...this.#jobs.keys()] });
    }
  }

  /** One tick of `name`'s schedule: runs it unless another process claimed the tick. */
  async #scheduled(name: string, tick: Date): Promise<void> {
    try {
      await this.run(name, { trigger: "schedule", tick });
    } catch (err) {
      const fields = { mirror: name, tick: tick.toISOString(), reason: (err as Error).message };
      if (err instanceof TickTakenError) {
        this.#log.debug("tick claimed elsewhere", fields);
      } else if (err instanceof MirrorBusyError) {
        this.#log.info("tick skipped, still running", fields);
      } else {
        this.#log.warn("scheduled run not started", fields);
      }
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

  /**
   * Runs mirror `name` now; throws {@link MirrorBusyError} when it is already running here or
   * in another process, {@link TickTakenError} when `options.tick` was claimed already.
   */
  run(name: string, options: ServiceRunOptions = {}): Promise<RunReport> {
    const mirror = this.#mirrors.find((m) => m.name === name);
    if (!mirror) return Promise.reject(new UnknownMirrorError(`no mirror named "${name}"`));
    const live = this.#running.get(name);
    if (live) {
      const running = live.id === undefined
        ? undefined
        : { id: live.id, host: hostname(), pid: Deno.pid };
      return Promise.reject(new MirrorBusyError(`mirror ${name} is already running`, running));
    }
    // Registered before the first await: a second call in this process is refused at once.
    const abort = new AbortController();
    const promise = this.#run(mirror, options, abort).finally(() => this.#running.delete(name));
    this.#running.set(name, { promise, abort });
    return promise;
  }

  async #run(
    mirror: MirrorConfig,
    options: ServiceRunOptions,
    abort: AbortController,
  ): Promise<RunReport> {
    const name = mirror.name;
    const history = this.#deps.history;
    const begun = await history.begin(name, options.trigger ?? "manual", {
      tick: options.tick?.getTime(),
      leaseMs: mirror.lease,
    });
    if ("taken" in begun) {
      throw new TickTakenError(`tick ${options.tick?.toISOString()} of ${name} was claimed`);
    }
    if ("busy" in begun) {
      const { id, pid, host } = begun.busy;
      throw new MirrorBusyError(
        `mirror ${name} is already running in process ${pid} on ${host} (run ${id})`,
        begun.busy,
      );
    }
    const live = this.#running.get(name);
    if (live) live.id = begun.id;
    options.onBegin?.(begun.id);
    const renewal = this.#renewLease(begun.id, mirror, abort);
    try {
      const report = await runMirror(this.#deps, mirror, {
        onProgress: options.onProgress,
        signal: abort.signal,
      });
      await this.#record(begun.id, name, report.outcome, report, report.errors);
      return report;
    } catch (err) {
      await this.#record(begun.id, name, "failed", noCounts(), [
        String((err as Error).message ?? err),
      ]);
      throw err;
    } finally {
      clearInterval(renewal);
    }
  }

  /**
   * Renews the run's lease every third of it. A run found taken over (its lease had lapsed and
   * another process marked it interrupted) stops after its current images.
   */
  #renewLease(
    id: number,
    mirror: MirrorConfig,
    abort: AbortController,
  ): ReturnType<typeof setInterval> {
    let renewing = false;
    return setInterval(async () => {
      if (renewing) return;
      renewing = true;
      try {
        if (!await this.#deps.history.heartbeat(id, mirror.lease)) {
          this.#log.error("run taken over after its lease lapsed; stopping", {
            mirror: mirror.name,
            run: id,
          });
          abort.abort();
        }
      } catch (err) {
        this.#log.warn("lease not renewed", { mirror: mirror.name, run: id, error: String(err) });
      } finally {
        renewing = false;
      }
    }, Math.max(mirror.lease / 3, 100));
  }

  /** Records the end of a run; a history that fails then leaves it to expire as interrupted. */
  async #record(
    id: number,
    name: string,
    outcome: RunReport["outcome"],
    counts: RunCounts,
    errors: string[],
  ): Promise<void> {
    metrics.syncRun(name, outcome === "failed" ? "failure" : outcome);
    try {
      await this.#deps.history.finish(id, outcome, counts, errors);
    } catch (err) {
      this.#log.error("run end not recorded", { mirror: name, run: id, error: String(err) });
    }
  }

  async mirrors(): Promise<MirrorStatus[]> {
    const live = new Set(
      (await this.#deps.history.list({ outcome: "running", limit: 1000 })).map((r) => r.mirror),
    );
    return this.#mirrors.map((m) => ({
      name: m.name,
      upstream: m.upstream,
      schedule: m.schedule ?? null,
      nextRun: this.#jobs.get(m.name)?.nextRun()?.toISOString() ?? null,
      running: this.#running.has(m.name) || live.has(m.name),
    }));
  }

  runs(options: { mirror?: string; limit?: number } = {}): Promise<RunRecord[]> {
    return this.#deps.history.list(options);
  }

  findRun(id: number): Promise<RunRecord | null> {
    return this.#deps.history.get(id);
  }

  mirror(name: string): MirrorConfig | undefined {
    return this.#mirrors.find((m) => m.name === name);
  }

  /**
   * Starts a run of `name` in the background, the same run a schedule starts (history, lease,
   * metrics, logs), and resolves with its id once the history holds it. Rejects like
   * {@link run} when it does not start: {@link UnknownMirrorError}, {@link MirrorBusyError}.
   */
  requestRun(name: string, trigger: string): Promise<number> {
    return new Promise((resolve, reject) => {
      let begun = false;
      const onBegin = (id: number) => {
        begun = true;
        this.#log.info("run requested", { mirror: name, run: id, trigger });
        resolve(id);
      };
      this.run(name, { trigger, onBegin }).catch((err) => {
        if (!begun) return reject(err);
        this.#log.warn("requested run failed", { mirror: name, error: String(err) });
      });
    });
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
