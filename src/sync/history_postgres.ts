/**
 * The {@link SyncHistory} of several processes sharing one PostgreSQL database, on the metadata
 * store's pool. Two unique indexes do the coordinating:
 * - `(mirror, tick)`: a scheduled tick is claimed by one insert, so every process may run the
 *   same schedule and a tick yields one run, even for a process whose timer fires after the
 *   first run already finished;
 * - `(mirror) WHERE outcome = 'running'`: one live run per mirror, scheduled or by hand.
 *
 * A running run holds a lease (`lease_until`, on the database's clock) that its process renews
 * while it runs. A killed process stops renewing: once the lease has expired, the next claim
 * (or listing) marks the run `interrupted`, and the mirror is free for any process.
 * @module
 */
import { hostname } from "node:os";
import type postgres from "postgres";
import { guardPostgres } from "../metadata/postgres.ts";
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

/** Advisory lock key held while the tables are created ("WSync" in ASCII). */
const SCHEMA_LOCK = 0x5753796e63;

/** Index + 1 is the version recorded in `wharf_sync_schema`. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE wharf_sync_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mirror text COLLATE "C" NOT NULL,
    trigger text NOT NULL,
    tick bigint,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at bigint NOT NULL,
    ended_at bigint,
    lease_until bigint,
    outcome text NOT NULL,
    images bigint NOT NULL DEFAULT 0,
    unchanged bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    attachments bigint NOT NULL DEFAULT 0,
    blobs bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    retries bigint NOT NULL DEFAULT 0,
    deleted bigint NOT NULL DEFAULT 0,
    errors text NOT NULL DEFAULT '[]'
  );
  CREATE INDEX wharf_sync_runs_by_mirror ON wharf_sync_runs(mirror, id);
  CREATE UNIQUE INDEX wharf_sync_runs_by_tick ON wharf_sync_runs(mirror, tick)
    WHERE tick IS NOT NULL;
  CREATE UNIQUE INDEX wharf_sync_runs_live ON wharf_sync_runs(mirror)
    WHERE outcome = 'running';

  CREATE TABLE wharf_sync_mirrored_tags (
    mirror text COLLATE "C" NOT NULL,
    repository text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (mirror, repository, tag)
  );
  `,
];

/** Milliseconds since the epoch on the database's clock: one clock for every process. */
const NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/** The history in PostgreSQL tables `wharf_sync_runs` and `wharf_sync_mirrored_tags`. */
export class PostgresSyncHistory implements SyncHistory {
  readonly #sql: postgres.Sql;
  readonly #host = hostname();

  private constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /**
   * Creates the tables on the pool `sql` (once, under an advisory lock, however many processes
   * start together) and marks runs whose lease expired as interrupted. The pool stays the
   * caller's: {@link close} does not end it.
   */
  static async open(sql: postgres.Sql): Promise<PostgresSyncHistory> {
    const history = new PostgresSyncHistory(sql);
    await guardPostgres(sql, () =>
      sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await tx.unsafe(
          "CREATE TABLE IF NOT EXISTS wharf_sync_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
        );
        const [row] = await tx`SELECT coalesce(max(version), 0) AS v FROM wharf_sync_schema`;
        for (let version = Number(row.v) + 1; version <= MIGRATIONS.length; version++) {
          await tx.unsafe(MIGRATIONS[version - 1]);
          await tx.unsafe(
            `INSERT INTO wharf_sync_schema (version, applied_at) VALUES ($1, ${NOW})`,
            [version],
          );
        }
      }));
    await guardPostgres(sql, () => history.#reapExpired());
    return history;
  }

  /** Marks running runs whose lease expired (their process stopped renewing) interrupted. */
  async #reapExpired(mirror?: string): Promise<void> {
    await this.#sql.unsafe(
      `UPDATE wharf_sync_runs SET outcome = 'interrupted', lease_until = NULL
       WHERE outcome = 'running' AND lease_until < ${NOW}
         ${mirror === undefined ? "" : "AND mirror = $1"}`,
      mirror === undefined ? [] : [mirror],
    );
  }

  begin(mirror: string, trigger: string, options: BeginOptions): Promise<BeginResult> {
    return guardPostgres(this.#sql, async () => {
      // A conflicting run may end between the insert and the look that explains it: try again.
      for (let attempt = 0; attempt < 5; attempt++) {
        await this.#reapExpired(mirror);
        const inserted = await this.#sql.unsafe(
          `INSERT INTO wharf_sync_runs
             (mirror, trigger, tick, host, pid, started_at, lease_until, outcome)
           VALUES ($1, $2, $3, $4, $5, ${NOW}, ${NOW} + $6, 'running')
           ON CONFLICT DO NOTHING
           RETURNING id`,
          [mirror, trigger, options.tick ?? null, this.#host, Deno.pid, options.leaseMs],
        );
        if (inserted.length > 0) return { id: Number(inserted[0].id) };
        if (options.tick !== undefined) {
          const [claimed] = await this.#sql`
            SELECT 1 FROM wharf_sync_runs WHERE mirror = ${mirror} AND tick = ${options.tick}`;
          if (claimed) return { taken: true };
        }
        const [live] = await this.#sql`
          SELECT id, host, pid FROM wharf_sync_runs
          WHERE mirror = ${mirror} AND outcome = 'running'`;
        if (live) {
          return { busy: { id: Number(live.id), host: String(live.host), pid: Number(live.pid) } };
        }
      }
      throw new Error(`could not record a run of mirror ${mirror}: its claims keep changing`);
    });
  }

  heartbeat(id: number, leaseMs: number): Promise<boolean> {
    return guardPostgres(this.#sql, async () => {
      const renewed = await this.#sql.unsafe(
        `UPDATE wharf_sync_runs SET lease_until = ${NOW} + $2
         WHERE id = $1 AND outcome = 'running'`,
        [id, leaseMs],
      );
      return renewed.count > 0;
    });
  }

  finish(id: number, outcome: Outcome, counts: RunCounts, errors: string[]): Promise<void> {
    return guardPostgres(this.#sql, async () => {
      await this.#sql.unsafe(
        `UPDATE wharf_sync_runs SET ended_at = ${NOW}, outcome = $2, images = $3, unchanged = $4,
           skipped = $5, attachments = $6, blobs = $7, bytes = $8, retries = $9, deleted = $10,
           errors = $11, lease_until = NULL
         WHERE id = $1`,
        [
          id,
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
        ],
      );
    });
  }

  list(options: ListOptions = {}): Promise<RunRecord[]> {
    return guardPostgres(this.#sql, async () => {
      await this.#reapExpired(options.mirror);
      const rows = await this.#sql`
        SELECT * FROM wharf_sync_runs
        WHERE (${options.mirror ?? null}::text IS NULL OR mirror = ${options.mirror ?? null})
          AND (${options.outcome ?? null}::text IS NULL OR outcome = ${options.outcome ?? null})
        ORDER BY id DESC LIMIT ${options.limit ?? 50}`;
      return rows.map(runRecord);
    });
  }

  get(id: number): Promise<RunRecord | null> {
    return guardPostgres(this.#sql, async () => {
      // Only this run's own lease matters to its record.
      await this.#sql.unsafe(
        `UPDATE wharf_sync_runs SET outcome = 'interrupted', lease_until = NULL
         WHERE id = $1 AND outcome = 'running' AND lease_until < ${NOW}`,
        [id],
      );
      const [row] = await this.#sql`SELECT * FROM wharf_sync_runs WHERE id = ${id}`;
      return row ? runRecord(row) : null;
    });
  }

  recordTag(mirror: string, repository: string, tag: string, digest: string): Promise<void> {
    return guardPostgres(this.#sql, async () => {
      await this.#sql.unsafe(
        `INSERT INTO wharf_sync_mirrored_tags (mirror, repository, tag, digest, updated_at)
         VALUES ($1, $2, $3, $4, ${NOW})
         ON CONFLICT (mirror, repository, tag) DO UPDATE SET digest = excluded.digest,
           updated_at = excluded.updated_at`,
        [mirror, repository, tag, digest],
      );
    });
  }

  mirroredTags(mirror: string, repository: string): Promise<Map<string, string>> {
    return guardPostgres(this.#sql, async () => {
      const rows = await this.#sql`
        SELECT tag, digest FROM wharf_sync_mirrored_tags
        WHERE mirror = ${mirror} AND repository = ${repository}`;
      return new Map(rows.map((r) => [String(r.tag), String(r.digest)]));
    });
  }

  mirroredRepositories(mirror: string): Promise<string[]> {
    return guardPostgres(this.#sql, async () => {
      const rows = await this.#sql`
        SELECT DISTINCT repository FROM wharf_sync_mirrored_tags WHERE mirror = ${mirror}
        ORDER BY repository`;
      return rows.map((r) => String(r.repository));
    });
  }

  forgetTag(mirror: string, repository: string, tag: string): Promise<void> {
    return guardPostgres(this.#sql, async () => {
      await this.#sql`
        DELETE FROM wharf_sync_mirrored_tags
        WHERE mirror = ${mirror} AND repository = ${repository} AND tag = ${tag}`;
    });
  }

  /** Nothing to release: the pool belongs to the metadata store. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
