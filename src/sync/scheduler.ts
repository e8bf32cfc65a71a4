/**
 * Schedules of mirrors inside `wharf serve`: a cron expression (UTC, croner) or an interval
 * (`30m`). Each firing is a *tick* named by its scheduled time, which every process computes
 * alike from the same schedule: a cron occurrence, or for an interval a multiple of it since
 * the epoch. That shared name is what lets processes claim a tick once (see `history.ts`). A
 * tick whose previous task still runs in this process is skipped.
 * @module
 */
import { Cron } from "croner";
import { parseDuration } from "../config/units.ts";

/** A scheduled job. */
export interface Job {
  /** The next planned tick, or null. */
  nextRun(): Date | null;
  stop(): void;
}

/** Longest single timer: Deno's timers overflow past 2^31 ms; long waits are re-armed. */
const MAX_WAIT_MS = 24 * 60 * 60 * 1000;

/**
 * Starts a job for `schedule`: an interval (`"30m"`; its current tick runs right away) or a
 * cron expression. `task` gets the tick's scheduled time. Throws on an invalid expression.
 *
 * @example
 * ```ts
 * const job = schedule("*\/5 * * * *", (tick) => run(tick));
 * job.stop();
 * ```
 */
export function schedule(expression: string, task: (tick: Date) => Promise<void>): Job {
  const next = tickClock(expression);
  let planned: number | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let busy = false;
  let stopped = false;

  const arm = (at: number | null) => {
    planned = at;
    if (at === null || stopped) return;
    timer = setTimeout(fire, Math.min(Math.max(at - Date.now(), 0), MAX_WAIT_MS));
  };
  const fire = () => {
    if (stopped || planned === null) return;
    const tick = planned;
    if (Date.now() < tick) return arm(tick);
    // After a stall (a suspended machine), missed ticks are skipped: the next is in the future.
    arm(next(Math.max(tick, Date.now())));
    if (busy) return;
    busy = true;
    task(new Date(tick)).catch(() => {}).finally(() => {
      busy = false;
    });
  };

  const interval = intervalMs(expression);
  arm(interval === null ? next(Date.now()) : Math.floor(Date.now() / interval) * interval);
  return {
    nextRun: () => planned === null ? null : new Date(planned),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * The tick clock of `expression`: given a time (ms), the next tick strictly after it, or null
 * when the schedule has no more. Throws on an invalid expression.
 */
export function tickClock(expression: string): (after: number) => number | null {
  const interval = intervalMs(expression);
  if (interval !== null) return (after) => (Math.floor(after / interval) + 1) * interval;
  const cron = new Cron(expression, { timezone: "UTC", paused: true });
  return (after) => cron.nextRun(new Date(after))?.getTime() ?? null;
}

/** Seconds of an interval schedule (`30m`), or null for a cron expression. */
export function intervalSeconds(expression: string): number | null {
  if (expression.trim().includes(" ")) return null;
  const ms = parseDuration(expression);
  return ms === null ? null : Math.max(1, Math.round(ms / 1000));
}

function intervalMs(expression: string): number | null {
  const seconds = intervalSeconds(expression);
  return seconds === null ? null : seconds * 1000;
}

/** The reason `expression` is not a valid schedule, or null when it is. */
export function scheduleProblem(expression: string): string | null {
  if (intervalSeconds(expression) !== null) return null;
  try {
    new Cron(expression, { paused: true, timezone: "UTC" }).stop();
    return null;
  } catch (err) {
    return `invalid schedule "${expression}": ${(err as Error).message}`;
  }
}
