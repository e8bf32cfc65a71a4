/**
 * Schedules of mirrors inside `wharf serve`, on croner: a cron expression (UTC) or an interval
 * (`30m`). `protect: true` keeps a slow run from overlapping its next tick.
 * @module
 */
import { Cron } from "croner";
import { parseDuration } from "../config/units.ts";

/** A scheduled job. */
export interface Job {
  /** The next planned start, or null. */
  nextRun(): Date | null;
  stop(): void;
}

/**
 * Starts a job for `schedule`: an interval (`"30m"`, first run right away) or a cron
 * expression. Throws on an invalid expression.
 *
 * @example
 * ```ts
 * const job = schedule("*\/5 * * * *", () => run());
 * job.stop();
 * ```
 */
export function schedule(
  expression: string,
  task: () => Promise<void>,
  options: { paused?: boolean } = {},
): Job {
  const interval = intervalSeconds(expression);
  const job = interval === null
    ? new Cron(expression, { protect: true, timezone: "UTC", paused: options.paused }, task)
    : new Cron("* * * * * *", {
      protect: true,
      timezone: "UTC",
      interval,
      paused: options.paused,
    }, task);
  return { nextRun: () => job.nextRun(), stop: () => job.stop() };
}

/** Seconds of an interval schedule (`30m`), or null for a cron expression. */
export function intervalSeconds(expression: string): number | null {
  if (expression.trim().includes(" ")) return null;
  const ms = parseDuration(expression);
  return ms === null ? null : Math.max(1, Math.round(ms / 1000));
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
