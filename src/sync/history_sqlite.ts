/**
 * The {@link SyncHistory} of a single node, in its own SQLite file `<data>/sync.db` (WAL, so
 * `wharf sync status` and `wharf sync run` can read and write while `wharf serve` runs). A run
 * is live while its process is: processes on one host see each other's pids, so a run whose
 * process died is `interrupted` as soon as someone looks, with no lease to wait out.
 * @module
 */
import { processAlive } from "../concurrency/process_alive.ts";
import { hostname } from "node:os";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import {
  type BeginOptions,
  type BeginResult,
  type ListOptions,
  MAX_ERRORS,
  type Outcome,
  type RunCounts,
  type RunRecord,
  runRecord,
  type SyncHistory,
} from "./history.ts";

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
  // Scheduled ticks are claimed once (like the PostgreSQL history); the host names the pid.
  `ALTER TABLE runs ADD COLUMN tick INTEGER;
   ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
   ALTER TABLE runs ADD COLUMN lease_until INTEGER;
   CREATE UNIQUE INDEX runs_by_tick ON runs(mirror, tick) WHERE tick IS NOT NULL;`,
];

/** The history in a SQLite file. */
export class SqliteSyncHistory implements SyncHistory {
  readonly #db: DatabaseSync;
  readonly #host = hostname();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (creating) the database; runs left `running` by a dead process become `interrupted`. */
  static open(path: string): SqliteSyncHistory {
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
    const history = new SqliteSyncHistory(db);
    history.#reapDead(true);
    return history;
  }

  /**
   * Marks runs of dead processes interrupted (at open, also this pid's: it just started). A run
   * of another host (a data directory on a shared disk) is dead once its lease expired.
   */
  #reapDead(atOpen = false): void {
    const running = this.#db.prepare(
      "SELECT id, pid, host, lease_until FROM runs WHERE outcome = 'running'",
    ).all();
    for (const row of running) {
      const pid = Number(row.pid);
      const here = row.host === "" || row.host === this.#host;
      const dead = here
        ? (atOpen && pid === Deno.pid) || !processAlive(pid)
        : row.lease_until !== null && Number(row.lease_until) < Date.now();
      if (dead) {
        this.#db.prepare(
          "UPDATE runs SET outcome = 'interrupted' WHERE id = ? AND outcome = 'running'",
        ).run(row.id as number);
      }
    }
  }

  begin(mirror: string, trigger: string, options: BeginOptions): Promise<BeginResult> {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#reapDead();
      const result = this.#claim(mirror, trigger, options);
      this.#db.exec("id" in result ? "COMMIT" : "ROLLBACK");
      return Promise.resolve(result);
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  #claim(mirror: string, trigger: string, options: BeginOptions): BeginResult {
    if (options.tick !== undefined) {
      const claimed = this.#db.prepare("SELECT 1 FROM runs WHERE mirror = ? AND tick = ?")
        .get(mirror, options.tick);
      if (claimed) return { taken: true };
    }
    const other = this.#db.prepare(
      "SELECT id, host, pid FROM runs WHERE mirror = ? AND outcome = 'running' LIMIT 1",
    ).get(mirror);
    if (other) {
      return { busy: { id: Number(other.id), host: String(other.host), pid: Number(other.pid) } };
    }
    const now = Date.now();
    const result = this.#db.prepare(
      `INSERT INTO runs (mirror, trigger, tick, host, pid, started_at, lease_until, outcome)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'running')`,
    ).run(
      mirror,
      trigger,
      options.tick ?? null,
      this.#host,
      Deno.pid,
      now,
      now + options.leaseMs,
    );
    return { id: Number(result.lastInsertRowid) };
  }

  heartbeat(id: number, leaseMs: number): Promise<boolean> {
    const result = this.#db.prepare(
      "UPDATE runs SET lease_until = ? WHERE id = ? AND outcome = 'running'",
    ).run(Date.now() + leaseMs, id);
    return Promise.resolve(Number(result.changes) > 0);
  }

  finish(id: number, outcome: Outcome, counts: RunCounts, errors: string[]): Promise<void> {
    this.#db.prepare(
      `UPDATE runs SET ended_at = ?, outcome = ?, images = ?, unchanged = ?, skipped = ?,
         attachments = ?, blobs = ?, bytes = ?, retries = ?, deleted = ?, errors = ?,
         lease_until = NULL
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
    return Promise.resolve();
  }

  list(options: ListOptions = {}): Promise<RunRecord[]> {
    this.#reapDead();
    const params: SQLInputValue[] = [];
    const where: string[] = [];
    if (options.mirror) {
      where.push("mirror = ?");
      params.push(options.mirror);
    }
    if (options.outcome) {
      where.push("outcome = ?");
      params.push(options.outcome);
    }
    params.push(options.limit ?? 50);
    const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    const rows = this.#db.prepare(`SELECT * FROM runs ${clause} ORDER BY id DESC LIMIT ?`)
      .all(...params);
    return Promise.resolve(rows.map(runRecord));
  }

  get(id: number): Promise<RunRecord | null> {
    this.#reapDead();
    const row = this.#db.prepare("SELECT * FROM runs WHERE id = ?").get(id);
    return Promise.resolve(row ? runRecord(row) : null);
  }

  recordTag(mirror: string, repository: string, tag: string, digest: string): Promise<void> {
    this.#db.prepare(
      `INSERT INTO mirrored_tags (mirror, repository, tag, digest, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (mirror, repository, tag) DO UPDATE SET digest = excluded.digest,
         updated_at = excluded.updated_at`,
    ).run(mirror, repository, tag, digest, Date.now());
    return Promise.resolve();
  }

  mirroredTags(mirror: string, repository: string): Promise<Map<string, string>> {
    const rows = this.#db.prepare(
      "SELECT tag, digest FROM mirrored_tags WHERE mirror = ? AND repository = ?",
    ).all(mirror, repository);
    return Promise.resolve(new Map(rows.map((r) => [String(r.tag), String(r.digest)])));
  }

  mirroredRepositories(mirror: string): Promise<string[]> {
    return Promise.resolve(
      this.#db.prepare(
        "SELECT DISTINCT repository FROM mirrored_tags WHERE mirror = ? ORDER BY repository",
      ).all(mirror).map((r) => String(r.repository)),
    );
  }

  forgetTag(mirror: string, repository: string, tag: string): Promise<void> {
    this.#db.prepare("DELETE FROM mirrored_tags WHERE mirror = ? AND repository = ? AND tag = ?")
      .run(mirror, repository, tag);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}
