/**
 * Readiness checks: does each dependency the registry needs to serve answer right now?
 * `/readyz` runs them; a failing one is named, with its driver, in a 503.
 * @module
 */
import type { BlobStore } from "../storage/blob_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import type { Logger } from "../log/logger.ts";

/** One dependency to check. */
export interface HealthCheck {
  /** What it checks, as named in the `/readyz` answer: `metadata`, `storage`. */
  name: string;
  /** Which implementation: `sqlite`, `postgres`, `filesystem`, `s3`. */
  driver: string;
  /** Resolves when the dependency works; rejects with the reason otherwise. */
  check(signal: AbortSignal): Promise<void>;
}

/** The outcome of one check. */
export interface CheckResult {
  name: string;
  driver: string;
  ok: boolean;
  /** How long the check took, in milliseconds. */
  ms: number;
  /** Why it failed. */
  error?: string;
}

/** How long one check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 2_000;

/** The metadata database answers `SELECT 1`. */
export function metadataCheck(metadata: MetadataStore): HealthCheck {
  return { name: "metadata", driver: metadata.driver, check: () => metadata.ping() };
}

/** The blob store answers its cheapest request (a probe file, or S3 HeadBucket). */
export function storageCheck(store: BlobStore): HealthCheck {
  return { name: "storage", driver: store.driver, check: (signal) => store.ping(signal) };
}

/**
 * Runs every check at once, each bounded by `timeoutMs` (its signal is aborted then), and
 * reports all results in the order given.
 *
 * @example
 * ```ts
 * const results = await runChecks([metadataCheck(registry.metadata)]);
 * const failed = results.filter((r) => !r.ok);
 * ```
 */
export function runChecks(
  checks: HealthCheck[],
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<CheckResult[]> {
  return Promise.all(checks.map(async ({ name, driver, check }): Promise<CheckResult> => {
    const started = performance.now();
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`no answer within ${timeoutMs} ms`));
        abort.abort();
      }, timeoutMs);
    });
    const ms = () => Math.round(performance.now() - started);
    try {
      await Promise.race([check(abort.signal), timeout]);
      return { name, driver, ok: true, ms: ms() };
    } catch (err) {
      return {
        name,
        driver,
        ok: false,
        ms: ms(),
        error: err instanceof Error ? err.message : String(err),
      };
    } finally {
      clearTimeout(timer);
    }
  }));
}

/**
 * Logs a change of readiness once, not on every probe: a warning naming each failing
 * dependency, its driver and the reason when a check starts failing, a line when all pass again.
 */
export class ReadinessLog {
  #failing = "";

  constructor(private readonly log: Logger) {}

  /** Compares `results` with the last probe's and logs when the set of failing checks changed. */
  record(results: CheckResult[]): void {
    const failed = results.filter((r) => !r.ok);
    const key = failed.map((r) => r.name).join(",");
    if (key === this.#failing) return;
    const recovered = this.#failing;
    this.#failing = key;
    if (failed.length === 0) {
      this.log.info(`ready: ${recovered} answering again`, { recovered: recovered.split(",") });
      return;
    }
    const what = failed.map((r) => `${r.name} (${r.driver}) failing: ${r.error}`).join("; ");
    this.log.warn(`not ready: ${what}`, {
      failing: Object.fromEntries(
        failed.map((r) => [r.name, { driver: r.driver, error: r.error }]),
      ),
    });
  }
}
