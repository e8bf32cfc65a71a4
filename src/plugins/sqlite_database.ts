/**
 * The plugins' database in one SQLite file (`<data>/plugins.db`), for a registry run as one
 * process. SQLite runs each statement synchronously; a transaction spans awaits, so while one is
 * open every other statement of the store waits for it to end.
 * @module
 */
import {
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from "node:sqlite";
import type {
  ArtifactIndex,
  IndexedArtifact,
  Migration,
  PluginDatabase,
  PluginQueries,
  SqlRow,
  SqlValue,
} from "./api.ts";
import type { Digest } from "../oci/digest.ts";
import {
  ARTIFACT_COLUMNS,
  indexedArtifact,
  migrationFailed,
  migrationText,
  type PluginStore,
  pluginTable,
  type TableColumn,
  TransactionScope,
} from "./database.ts";

/**
 * One SQLite file for all plugins.
 *
 * @example
 * ```ts
 * const store = new SqlitePluginStore(":memory:");
 * await store.database("demo").migrate(["CREATE TABLE p_demo_notes (note TEXT)"]);
 * await store.close();
 * ```
 */
export class SqlitePluginStore implements PluginStore {
  readonly dialect = "sqlite";
  readonly #db: DatabaseSync;
  readonly #scope = new TransactionScope();
  /** Settles when the open transaction ends; null when none is open. */
  #open: Promise<void> | null = null;
  /** Transactions wait for the one before them. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA synchronous = NORMAL");
    this.#db.exec("PRAGMA busy_timeout = 5000");
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS plugin_migrations (
        plugin TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
        PRIMARY KEY (plugin, version)
      ) STRICT;
      CREATE TABLE IF NOT EXISTS artifacts (
        repository TEXT NOT NULL,
        subject TEXT NOT NULL,
        digest TEXT NOT NULL,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repository, digest, plugin, kind, type, subject)
      ) STRICT;
      CREATE INDEX IF NOT EXISTS artifacts_by_subject ON artifacts(repository, subject);
    `);
  }

  database(plugin: string): PluginDatabase {
    const db = this.#db;
    /** Statements of `ctx.db` (`tx` null) or of an open transaction's `tx`. */
    const queries = (tx: { open: boolean } | null): PluginQueries => {
      const run = <T>(fn: () => T) =>
        tx === null ? this.#statement(fn) : Promise.resolve().then(() => {
          if (!tx.open) throw new Error("this transaction has ended; its tx cannot be used");
          return fn();
        });
      return {
        dialect: "sqlite",
        table: (name) => pluginTable(plugin, name),
        all: (sql, ...values) => run(() => reading(db, sql).all(...params(values)).map(rowOf)),
        get: (sql, ...values) =>
          run(() => {
            const row = reading(db, sql).get(...params(values));
            return row && rowOf(row);
          }),
        run: (sql, ...values) => run(() => Number(db.prepare(sql).run(...params(values)).changes)),
      };
    };
    return {
      ...queries(null),
      migrate: (migrations) => this.#statement(() => this.#migrate(plugin, migrations)),
      transaction: async (fn) => {
        this.#scope.assertOutside();
        const tx = { open: true };
        try {
          return await this.#transaction(() => fn(queries(tx)));
        } finally {
          tx.open = false;
        }
      },
    };
  }

  artifacts(plugin: string): ArtifactIndex {
    const db = this.#db;
    return {
      record: (record) =>
        this.#statement(() => {
          db.prepare(
            `INSERT INTO artifacts (${ARTIFACT_COLUMNS}, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO UPDATE SET type = excluded.type, status = excluded.status,
               detail = excluded.detail, updated_at = excluded.updated_at`,
          ).run(
            record.repository,
            record.subject,
            record.digest,
            plugin,
            record.kind,
            record.type,
            record.status,
            record.detail ? JSON.stringify(record.detail) : null,
            Date.now(),
          );
        }),
      list: (repository, subject) => this.list(repository, subject),
      ofArtifact: (repository, digest) =>
        this.#statement(() => this.#listArtifacts(repository, digest, "digest")),
      remove: (repository, digest) =>
        this.#statement(() => {
          db.prepare("DELETE FROM artifacts WHERE repository = ? AND digest = ? AND plugin = ?")
            .run(repository, digest, plugin);
        }),
    };
  }

  list(repository: string, subject: Digest): Promise<IndexedArtifact[]> {
    return this.#statement(() => this.#listArtifacts(repository, subject, "subject"));
  }

  forget(repository: string, digest: Digest): Promise<void> {
    return this.#statement(() => {
      this.#db.prepare(
        "DELETE FROM artifacts WHERE repository = ? AND (digest = ? OR subject = ?)",
      ).run(repository, digest, digest);
    });
  }

  readonly artifactTable = "artifacts";

  columns(table: string): Promise<TableColumn[] | null> {
    return this.#statement(() => {
      const columns = this.#db.prepare("SELECT * FROM pragma_table_xinfo(?)").all(table) as {
        name: string;
        type: string;
        pk: number;
        hidden: number;
      }[];
      if (columns.length === 0) return null;
      const keys = columns.filter((c) => c.pk > 0);
      const rowid = keys.length === 1 && keys[0].type.toUpperCase() === "INTEGER"
        ? keys[0].name
        : null;
      return columns.map((c) => ({ name: c.name, generated: c.hidden !== 0 || c.name === rowid }));
    });
  }

  pluginsWithTables(): Promise<string[]> {
    return this.#statement(() =>
      this.#db.prepare("SELECT DISTINCT plugin FROM plugin_migrations ORDER BY plugin").all()
        .map((row) => String(row.plugin))
    );
  }

  async close(): Promise<void> {
    await this.#queue;
    this.#db.close();
  }

  /** Runs `fn` once no transaction is open; refused inside one (it would wait for itself). */
  async #statement<T>(fn: () => T): Promise<T> {
    this.#scope.assertOutside();
    while (this.#open) await this.#open;
    return fn();
  }

  #transaction<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => {
      while (this.#open) await this.#open;
      let end!: () => void;
      this.#open = new Promise((resolve) => end = resolve);
      try {
        this.#db.exec("BEGIN IMMEDIATE");
        const value = await this.#scope.run(fn);
        this.#db.exec("COMMIT");
        return value;
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw err;
      } finally {
        this.#open = null;
        end();
      }
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  #migrate(plugin: string, migrations: Migration[]): void {
    const db = this.#db;
    const row = db.prepare("SELECT max(version) AS v FROM plugin_migrations WHERE plugin = ?")
      .get(plugin) as { v: number | null };
    for (let version = (row.v ?? 0) + 1; version <= migrations.length; version++) {
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(migrationText(migrations[version - 1], "sqlite"));
        db.prepare("INSERT INTO plugin_migrations VALUES (?, ?, ?)").run(
          plugin,
          version,
          Date.now(),
        );
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw migrationFailed(plugin, version, err);
      }
    }
  }

  #listArtifacts(repository: string, digest: string, by: "subject" | "digest") {
    return this.#db.prepare(
      `SELECT ${ARTIFACT_COLUMNS} FROM artifacts
       WHERE repository = ? AND ${by} = ? ORDER BY kind, digest, plugin`,
    ).all(repository, digest).map(indexedArtifact);
  }
}

function params(values: SqlValue[]): SQLInputValue[] {
  return values as SQLInputValue[];
}

/** A statement that reads integers as bigints, so that none beyond 2^53 is refused. */
function reading(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReadBigInts(true);
  return statement;
}

/** A plain object with integers as numbers where they fit. */
function rowOf(row: Record<string, SQLOutputValue>): SqlRow {
  const out: SqlRow = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] = typeof value === "bigint" && Number.isSafeInteger(Number(value))
      ? Number(value)
      : value;
  }
  return out;
}
