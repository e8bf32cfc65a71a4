/**
 * Pull-through's ledger of the tags it wrote: which local digest it pointed each tag at, what
 * the upstream tag resolved to then, and when the upstream was last asked. A tag is pull-through's
 * to move only while it still points where the ledger says; a tag pushed locally or moved by a
 * scheduled run is left alone. The check time lives in the shared database so that processes
 * sharing it check a stale tag once between them: `claim` is one conditional update.
 * Two implementations: `<data>/sync.db` (one host) and the metadata PostgreSQL database.
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type postgres from "postgres";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { guardPostgres, PostgresMetadataStore } from "../metadata/postgres.ts";
import type { Digest } from "../oci/digest.ts";

/** A tag as pull-through last wrote it. */
export interface PulledTag {
  /** The local digest the tag was pointed at. */
  digest: Digest;
  /** The upstream tag's digest then (differs for an index filtered to `platforms`). */
  upstreamDigest: Digest;
  /** Milliseconds since the last upstream check (on the database's clock). */
  age: number;
}

/** The ledger of tags pull-through wrote. */
export interface PulledTags {
  /** Remembers that pull-through pointed `tag` at `digest`, checked upstream just now. */
  record(repository: string, tag: string, digest: Digest, upstreamDigest: Digest): Promise<void>;
  /** What pull-through last wrote to `tag`, or null when it never did. */
  get(repository: string, tag: string): Promise<PulledTag | null>;
  /**
   * Takes the upstream check of `tag` when the ledger still has it at `digest` and its last
   * check is at least `ttlMs` old: true for one caller, which marks it checked now.
   */
  claim(repository: string, tag: string, digest: Digest, ttlMs: number): Promise<boolean>;
  /**
   * Forgets `tag` if the ledger still has it at `digest`: someone else moved it, so it is no
   * longer pull-through's (even should it point at `digest` again later).
   */
  forget(repository: string, tag: string, digest: Digest): Promise<void>;
  /** Releases the SQLite file (a PostgreSQL pool stays its owner's). */
  close(): void;
}

/** The ledger in SQLite (table `pulled_tags` of `<data>/sync.db`, WAL, one host). */
export class SqlitePulledTags implements PulledTags {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA busy_timeout = 5000");
    this.#db.exec(`CREATE TABLE IF NOT EXISTS pulled_tags (
      repository TEXT NOT NULL,
      tag TEXT NOT NULL,
      digest TEXT NOT NULL,
      upstream_digest TEXT NOT NULL,
      checked_at INTEGER NOT NULL,
      PRIMARY KEY (repository, tag)
    ) STRICT, WITHOUT ROWID`);
  }

  record(repository: string, tag: string, digest: Digest, upstreamDigest: Digest): Promise<void> {
    this.#db.prepare(
      `INSERT INTO pulled_tags (repository, tag, digest, upstream_digest, checked_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest,
         upstream_digest = excluded.upstream_digest, checked_at = excluded.checked_at`,
    ).run(repository, tag, digest, upstreamDigest, Date.now());
    return Promise.resolve();
  }

  get(repository: string, tag: string): Promise<PulledTag | null> {
    const row = this.#db.prepare(
      "SELECT digest, upstream_digest, checked_at FROM pulled_tags WHERE repository = ? AND tag = ?",
    ).get(repository, tag);
    return Promise.resolve(row ? pulledTag(row, Date.now() - Number(row.checked_at)) : null);
  }

  claim(repository: string, tag: string, digest: Digest, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const { changes } = this.#db.prepare(
      `UPDATE pulled_tags SET checked_at = ?
       WHERE repository = ? AND tag = ? AND digest = ? AND checked_at <= ?`,
    ).run(now, repository, tag, digest, now - ttlMs);
    return Promise.resolve(Number(changes) > 0);
  }

  forget(repository: string, tag: string, digest: Digest): Promise<void> {
    this.#db.prepare("DELETE FROM pulled_tags WHERE repository = ? AND tag = ? AND digest = ?")
      .run(repository, tag, digest);
    return Promise.resolve();
  }

  close(): void {
    this.#db.close();
  }
}

/** Advisory lock key held while the table is created ("WPull" in ASCII). */
const SCHEMA_LOCK = 0x5750756c6c;

/** Milliseconds since the epoch on the database's clock: one clock for every process. */
const NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/** The ledger in PostgreSQL (table `wharf_pulled_tags`), shared by every process. */
export class PostgresPulledTags implements PulledTags {
  readonly #sql: postgres.Sql;

  private constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** Creates the table on the pool `sql` once, under an advisory lock. */
  static async open(sql: postgres.Sql): Promise<PostgresPulledTags> {
    await guardPostgres(sql, () =>
      sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await tx.unsafe(`CREATE TABLE IF NOT EXISTS wharf_pulled_tags (
          repository text COLLATE "C" NOT NULL,
          tag text COLLATE "C" NOT NULL,
          digest text NOT NULL,
          upstream_digest text NOT NULL,
          checked_at bigint NOT NULL,
          PRIMARY KEY (repository, tag)
        )`);
      }));
    return new PostgresPulledTags(sql);
  }

  record(repository: string, tag: string, digest: Digest, upstreamDigest: Digest): Promise<void> {
    return guardPostgres(this.#sql, async () => {
      await this.#sql.unsafe(
        `INSERT INTO wharf_pulled_tags (repository, tag, digest, upstream_digest, checked_at)
         VALUES ($1, $2, $3, $4, ${NOW})
         ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest,
           upstream_digest = excluded.upstream_digest, checked_at = excluded.checked_at`,
        [repository, tag, digest, upstreamDigest],
      );
    });
  }

  get(repository: string, tag: string): Promise<PulledTag | null> {
    return guardPostgres(this.#sql, async () => {
      const [row] = await this.#sql.unsafe(
        `SELECT digest, upstream_digest, ${NOW} - checked_at AS age FROM wharf_pulled_tags
         WHERE repository = $1 AND tag = $2`,
        [repository, tag],
      );
      return row ? pulledTag(row, Number(row.age)) : null;
    });
  }

  claim(repository: string, tag: string, digest: Digest, ttlMs: number): Promise<boolean> {
    return guardPostgres(this.#sql, async () => {
      const claimed = await this.#sql.unsafe(
        `UPDATE wharf_pulled_tags SET checked_at = ${NOW}
         WHERE repository = $1 AND tag = $2 AND digest = $3 AND checked_at <= ${NOW} - $4`,
        [repository, tag, digest, ttlMs],
      );
      return claimed.count > 0;
    });
  }

  forget(repository: string, tag: string, digest: Digest): Promise<void> {
    return guardPostgres(this.#sql, async () => {
      await this.#sql`DELETE FROM wharf_pulled_tags
                      WHERE repository = ${repository} AND tag = ${tag} AND digest = ${digest}`;
    });
  }

  /** Nothing to release: the pool belongs to the metadata store. */
  close(): void {}
}

function pulledTag(row: Record<string, unknown>, age: number): PulledTag {
  return {
    digest: String(row.digest) as Digest,
    upstreamDigest: String(row.upstream_digest) as Digest,
    age,
  };
}

/**
 * The ledger that goes with `metadata`: its PostgreSQL database (the store's pool shared), or
 * `<dataDir>/sync.db` beside the sync history for a single node.
 */
export async function openPulledTags(
  metadata: MetadataStore,
  dataDir: string,
): Promise<PulledTags> {
  if (metadata instanceof PostgresMetadataStore) return await PostgresPulledTags.open(metadata.sql);
  return new SqlitePulledTags(join(dataDir, "sync.db"));
}
