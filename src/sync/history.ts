/**
 * Run history and the ledger of mirrored tags, in their own SQLite file `<data>/sync.db`
 * (WAL, so `wharf sync status` and `wharf sync run` can read and write while `wharf serve`
 * runs). Kept apart from the registry's metadata so that the metadata interface stays about
 * content; a networked database would implement {@link SyncHistory}'s methods the same way.
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";

const MIGRATIONS = [
  `CREATE TABLE runs (
     id INTEGER PRIMARY KEY,
     mirror TEXT NOT NULL,
     trigger TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     ended_at INTEGER,
     outcome TEXT NOT NULL,
     images INTEGER NOT NULL DEFAULT 0,
     unchanged INTEGER NOT NULL DEFAULT 0,
     skipped INTEGER NOT NULL DEFAULT 0,
     attachments INTEGER NOT NULL DEFAULT 0,
     blobs INTEGER NOT NULL DEFAULT 0,
     bytes INTEGER NOT NULL DEFAULT 0,
     retries INTEGER NOT NULL DEFAULT 0,
     deleted INTEGER NOT NULL DEFAULT 0,
     errors TEXT NOT NULL DEFAULT '[]'
   ) STRICT;
   CREATE INDEX runs_by_mirror ON runs(mirror, id);
   -- Tags a mirror wrote, so that deleteMissing removes only what the mirror put there.
   CREATE TABLE mirrored_tags (
     mirror TEXT NOT NULL,
     repository TEXT NOT NULL,
     tag TEXT NOT NULL,
     digest TEXT NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (mirror, repository, tag)
   ) STRICT, WITHOUT ROWID;`,
];

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

/** One run as recorded. */
export interface RunRecord extends RunCounts {
  id: number;
  mirror: string;
  trigger: string;
  pid: number;
  startedAt: string;
  endedAt: string | null;
  outcome: Outcome;
  errors: string[];
}

/** Most errors kept per run (the count is in the log). */
const MAX_ERRORS = 100;

/** The history database. */
export class SyncHistory {
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (creating) the database; runs left `running` by a dead process become `interrupted`. */
  static open(path: string): SyncHistory {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY) STRICT");
    const row = db.prepare("SELECT max(version) AS v FROM schema_migrations").get();
    for (let v = Number(row?.v ?? 0) + 1; v <= MIGRATIONS.length; v++) {
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(MIGRATIONS[v - 1]);
        db.prepare("INSERT INTO schema_migrations (version) VALUES (?)").run(v);
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    }
    const history = new SyncHistory(db);
    history.#reapDead(true);
    return history;
  }

  /** Marks runs of dead processes interrupted (at open, also this pid's: it just started). */
  #reapDead(atOpen = false): void {
    const running = this.#db.prepare("SELECT id, pid FROM runs WHERE outcome = 'running'").all();
    for (const row of running) {
      const pid = Number(row.pid);
      if ((atOpen && pid === Deno.pid) || !alive(pid)) {
        this.#db.prepare("UPDATE runs SET outcome = 'interrupted' WHERE id = ?").run(
          row.id as number,
        );
      }
    }
  }

  /**
   * Records the start of a run. Returns its id, or the pid of another live process that is
   * running the same mirror (one run per mirror at a time, across processes).
   */
  begin(mirror: string, trigger: string): { id: number } | { busy: number } {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#reapDead();
      const other = this.#db.prepare(
        "SELECT pid FROM runs WHERE mirror = ? AND outcome = 'running' LIMIT 1",
      ).get(mirror);
      if (other) {
        this.#db.exec("ROLLBACK");
        return { busy: Number(other.pid) };
      }
      const result = this.#db.prepare(
        `INSERT INTO runs (mirror, trigger, pid, started_at, outcome) VALUES (?, ?, ?, ?, 'running')`,
      ).run(mirror, trigger, Deno.pid, Date.now());
      this.#db.exec("COMMIT");
      return { id: Number(result.lastInsertRowid) };
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  /** Records the end of a run. */
  finish(id: number, outcome: Outcome, counts: RunCounts, errors: string[]): void {
    this.#db.prepare(
      `UPDATE runs SET ended_at = ?, outcome = ?, images = ?, unchanged = ?, skipped = ?,
         attachments = ?, blobs = ?, bytes = ?, retries = ?, deleted = ?, errors = ?
       WHERE id = ?`,
    ).run(
      Date.now(),
      outcome,
      counts.images,
      counts.unchanged,
      counts.skipped,
      counts.attachments,
      counts.blobs,
      counts.bytes,
      counts.retries,
      counts.deleted,
      JSON.stringify(errors.slice(0, MAX_ERRORS)),
      id,
    );
  }

  /** Runs, newest first. */
  list(options: { mirror?: string; limit?: number } = {}): RunRecord[] {
    const params: SQLInputValue[] = [];
    let where = "";
    if (options.mirror) {
      where = "WHERE mirror = ?";
      params.push(options.mirror);
    }
    params.push(options.limit ?? 50);
    return this.#db.prepare(`SELECT * FROM runs ${where} ORDER BY id DESC LIMIT ?`).all(...params)
      .map((row) => ({
        id: Number(row.id),
        mirror: String(row.mirror),
        trigger: String(row.trigger),
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
        errors: JSON.parse(String(row.errors)),
      }));
  }

  /** Remembers that `mirror` put `tag` → `digest` in `repository`. */
  recordTag(mirror: string, repository: string, tag: string, digest: string): void {
    this.#db.prepare(
      `INSERT INTO mirrored_tags (mirror, repository, tag, digest, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (mirror, repository, tag) DO UPDATE SET digest = excluded.digest,
         updated_at = excluded.updated_at`,
    ).run(mirror, repository, tag, digest, Date.now());
  }

  /** Tags `mirror` put in `repository`, with their digests. */
  mirroredTags(mirror: string, repository: string): Map<string, string> {
    const rows = this.#db.prepare(
      "SELECT tag, digest FROM mirrored_tags WHERE mirror = ? AND repository = ?",
    ).all(mirror, repository);
    return new Map(rows.map((r) => [String(r.tag), String(r.digest)]));
  }

  /** Local repositories `mirror` ever wrote tags to. */
  mirroredRepositories(mirror: string): string[] {
    return this.#db.prepare(
      "SELECT DISTINCT repository FROM mirrored_tags WHERE mirror = ? ORDER BY repository",
    ).all(mirror).map((r) => String(r.repository));
  }

  /** Forgets a mirrored tag. */
  forgetTag(mirror: string, repository: string, tag: string): void {
    this.#db.prepare("DELETE FROM mirrored_tags WHERE mirror = ? AND repository = ? AND tag = ?")
      .run(mirror, repository, tag);
  }

  close(): void {
    this.#db.close();
  }
}

function alive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
