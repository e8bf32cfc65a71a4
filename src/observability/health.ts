/**
 * Readiness checks: does each dependency the registry needs to serve answer right now?
 * `/readyz` runs them; a failing one is named in a 503.
 * @module
 */
import type { BlobStore } from "../storage/blob_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";

/** One dependency to check. */
export interface HealthCheck {
  /** What it checks, as named in the `/readyz` answer: `metadata`, `storage`. */
  name: string;
  /** Resolves when the dependency works; rejects with the reason otherwise. */
  check(): Promise<void>;
}

/** The outcome of one check. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** Why it failed (for the log; not sent to clients). */
  error?: string;
}

/** How long one check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 2_000;

/** The metadata database answers a query (a one-row listing). */
export function metadataCheck(metadata: MetadataStore): HealthCheck {
  return {
    name: "metadata",
    async check() {
      await metadata.listRepositories({ limit: 1 });
    },
  };
}

/**
 * The blob store accepts writes: an upload session is opened and discarded again. In the
 * filesystem store that creates and removes a file in `<data>/uploads`.
 */
export function storageCheck(store: BlobStore): HealthCheck {
  return {
    name: "storage",
    async check() {
      const id = `readyz-${crypto.randomUUID()}`;
      await store.startUpload(id);
      await store.cancelUpload(id);
    },
  };
}

/**
 * Runs every check at once, each bounded by `timeoutMs`, and reports all results.
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
  return Promise.all(checks.map(async ({ name, check }): Promise<CheckResult> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([check(), timeout]);
      return { name, ok: true };
    } catch (err) {
      return { name, ok: false, error: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(timer);
    }
  }));
}
