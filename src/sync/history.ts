/**
 * What mirroring remembers: the run history, the ledger of mirrored tags, and the claims that
 * keep one run of a mirror at a time and one run per scheduled tick. Two implementations:
 * `SqliteSyncHistory` (`<data>/sync.db`, one host) and `PostgresSyncHistory` (the metadata
 * database, every process sharing it).
 * @module
 */

/** How a run finished (`running` while it goes, `interrupted` when its process died). */
export type Outcome = "running" | "success" | "partial" | "failed" | "interrupted";

/** Counters of a run. */
export interface RunCounts {
  /** Images (tags) copied or moved. */
  images: number;
  /** Tags whose upstream digest was already here. */
  unchanged: number;
  /** Tags left out (not verified, no matching platform). */
  skipped: number;
  /** Attachments written (signatures, attestations, SBOMs, referrers). */
  attachments: number;
  blobs: number;
  bytes: number;
  retries: number;
  /** Tags removed by deleteMissing. */
  deleted: number;
}

/** Counters of a run that has done nothing yet. */
export function noCounts(): RunCounts {
  return {
    images: 0,
    unchanged: 0,
    skipped: 0,
    attachments: 0,
    blobs: 0,
    bytes: 0,
    retries: 0,
    deleted: 0,
  };
}

/** One run as recorded. */
export interface RunRecord extends RunCounts {
  id: number;
  mirror: string;
  trigger: string;
  /** The scheduled time of the tick this run claimed; null for runs started by hand. */
  tick: string | null;
  /** Host name and process id of the process that ran it. */
  host: string;
  pid: number;
  startedAt: string;
  endedAt: string | null;
  outcome: Outcome;
  errors: string[];
}

/** Options of {@link SyncHistory.begin}. */
export interface BeginOptions {
  /** Scheduled time (ms since the epoch) of the tick to claim; absent for runs started by hand. */
  tick?: number;
  /** How long the claim lasts without a {@link SyncHistory.heartbeat}. */
  leaseMs: number;
}

/**
 * What {@link SyncHistory.begin} found: the new run's id, the live run of the mirror (its id and
 * process), or the tick claimed by another run (possibly finished already).
 */
export type BeginResult =
  | { id: number }
  | { busy: { id: number; host: string; pid: number } }
  | { taken: true };

/** Filter of {@link SyncHistory.list}. */
export interface ListOptions {
  mirror?: string;
  outcome?: Outcome;
  limit?: number;
}

/** Runs and mirrored tags, shared by the processes that may run a mirror. */
export interface SyncHistory {
  /**
   * Records the start of a run unless the mirror is running (anywhere the history reaches) or
   * `options.tick` was claimed before. Runs whose process died are marked `interrupted` first.
   */
  begin(mirror: string, trigger: string, options: BeginOptions): Promise<BeginResult>;
  /** Renews the run's claim; false when it is no longer running (taken over as interrupted). */
  heartbeat(id: number, leaseMs: number): Promise<boolean>;
  /** Records the end of a run. */
  finish(id: number, outcome: Outcome, counts: RunCounts, errors: string[]): Promise<void>;
  /** Runs, newest first. */
  list(options?: ListOptions): Promise<RunRecord[]>;
  /** One run by its id (a dead process's run marked `interrupted` first), or null. */
  get(id: number): Promise<RunRecord | null>;
  /** Remembers that `mirror` put `tag` → `digest` in `repository`. */
  recordTag(mirror: string, repository: string, tag: string, digest: string): Promise<void>;
  /** Tags `mirror` put in `repository`, with their digests. */
  mirroredTags(mirror: string, repository: string): Promise<Map<string, string>>;
  /** Local repositories `mirror` ever wrote tags to. */
  mirroredRepositories(mirror: string): Promise<string[]>;
  /** Forgets a mirrored tag. */
  forgetTag(mirror: string, repository: string, tag: string): Promise<void>;
  /** Releases what the history holds (not a shared pool it was given). */
  close(): Promise<void>;
}

/** Most errors kept per run (the count is in the log). */
export const MAX_ERRORS = 100;

/** A row of the runs table (SQLite or PostgreSQL) as a {@link RunRecord}. */
export function runRecord(row: Record<string, unknown>): RunRecord {
  return {
    id: Number(row.id),
    mirror: String(row.mirror),
    trigger: String(row.trigger),
    tick: row.tick === null || row.tick === undefined
      ? null
      : new Date(Number(row.tick)).toISOString(),
    host: String(row.host ?? ""),
    pid: Number(row.pid),
    startedAt: new Date(Number(row.started_at)).toISOString(),
    endedAt: row.ended_at === null ? null : new Date(Number(row.ended_at)).toISOString(),
    outcome: row.outcome as Outcome,
    images: Number(row.images),
    unchanged: Number(row.unchanged),
    skipped: Number(row.skipped),
    attachments: Number(row.attachments),
    blobs: Number(row.blobs),
    bytes: Number(row.bytes),
    retries: Number(row.retries),
    deleted: Number(row.deleted),
    errors: typeof row.errors === "string" ? JSON.parse(row.errors) : [],
  };
}
