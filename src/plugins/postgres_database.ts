/**
 * The plugins' database in the PostgreSQL metadata database, on the metadata store's pool, so
 * that every process of a scaled-out registry sees what another indexed. Plugin tables keep
 * their names (`p_<plugin>_<table>`); the host's own are `wharf_plugin_migrations` and
 * `wharf_artifacts`. Schema changes (the host's and every plugin's migrations) run under one
 * advisory lock, so processes starting together apply each migration once. Connection failures
 * and timeouts become `RegistryError("UNAVAILABLE")` (503).
 * @module
 */
import type postgres from "postgres";
import { guardPostgres, postgresUnavailable } from "../metadata/postgres.ts";
import type { Digest } from "../oci/digest.ts";
import type {
  ArtifactIndex,
  IndexedArtifact,
  Migration,
  PluginDatabase,
  PluginQueries,
  SqlRow,
  SqlValue,
} from "./api.ts";
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
import { numberPlaceholders } from "./placeholders.ts";

type Sql = postgres.Sql | postgres.TransactionSql;

/** Advisory lock key held while plugin schemas change ("Wharp": Wharf plugins). */
const SCHEMA_LOCK = 0x5768617270;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS wharf_plugin_migrations (
    plugin text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    applied_at bigint NOT NULL,
    PRIMARY KEY (plugin, version)
  );
  CREATE TABLE IF NOT EXISTS wharf_artifacts (
    repository text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    plugin text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    status text NOT NULL,
    detail text,
    updated_at bigint NOT NULL,
    PRIMARY KEY (repository, digest, plugin, kind, type, subject)
  );
  CREATE INDEX IF NOT EXISTS wharf_artifacts_by_subject ON wharf_artifacts(repository, subject);
`;

/** PostgreSQL type ids whose text the driver leaves as strings but SQLite returns as numbers. */
const INT8 = 20;
const NUMERIC = 1700;

/**
 * The plugins' tables in a PostgreSQL database shared by several processes.
 *
 * @example
 * ```ts
 * const store = await PostgresPluginStore.open(metadata.sql);
 * await store.list("library/alpine", digest);
 * ```
 */
export class PostgresPluginStore implements PluginStore {
  readonly dialect = "postgres";
  readonly #sql: postgres.Sql;
  readonly #scope = new TransactionScope();

  private constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** Creates the host's tables (once, under the schema lock) on the pool `sql`. */
  static async open(sql: postgres.Sql): Promise<PostgresPluginStore> {
    await guardPostgres(sql, () =>
      sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await tx.unsafe(SCHEMA);
      }));
    return new PostgresPluginStore(sql);
  }

  database(plugin: string): PluginDatabase {
    const queries = (sql: Sql, outside: boolean): PluginQueries => {
      const query = (text: string, values: SqlValue[]) => {
        if (outside) this.#scope.assertOutside();
        return guardPostgres(
          this.#sql,
          () => sql.unsafe(numberPlaceholders(text), values as postgres.ParameterOrJSON<never>[]),
        );
      };
      return {
        dialect: "postgres",
        table: (name) => pluginTable(plugin, name),
        all: async (text, ...values) => rowsOf(await query(text, values)),
        get: async (text, ...values) => rowsOf(await query(text, values))[0],
        run: async (text, ...values) => (await query(text, values)).count ?? 0,
      };
    };
    return {
      ...queries(this.#sql, true),
      migrate: async (migrations) => {
        this.#scope.assertOutside();
        await this.#migrate(plugin, migrations);
      },
      transaction: async (fn) => {
        this.#scope.assertOutside();
        return await guardPostgres(
          this.#sql,
          () => this.#sql.begin((tx) => this.#scope.run(() => fn(queries(tx, false)))),
        ) as Awaited<ReturnType<typeof fn>>;
      },
    };
  }

  artifacts(plugin: string): ArtifactIndex {
    return {
      record: async (record) => {
        this.#scope.assertOutside();
        await guardPostgres(this.#sql, () =>
          this.#sql.unsafe(
            `INSERT INTO wharf_artifacts (${ARTIFACT_COLUMNS}, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repository, digest, plugin, kind, type, subject) DO UPDATE
               SET status = excluded.status, detail = excluded.detail,
                   updated_at = excluded.updated_at`,
            [
              record.repository,
              record.subject,
              record.digest,
              plugin,
              record.kind,
              record.type,
              record.status,
              record.detail ? JSON.stringify(record.detail) : null,
              Date.now(),
            ],
          ));
      },
      list: (repository, subject) => this.list(repository, subject),
      ofArtifact: (repository, digest) => this.#listArtifacts(repository, digest, "digest"),
      remove: async (repository, digest) => {
        this.#scope.assertOutside();
        await guardPostgres(this.#sql, () =>
          this.#sql`DELETE FROM wharf_artifacts
                    WHERE repository = ${repository} AND digest = ${digest} AND plugin = ${plugin}`);
      },
    };
  }

  list(repository: string, subject: Digest): Promise<IndexedArtifact[]> {
    return this.#listArtifacts(repository, subject, "subject");
  }

  async forget(repository: string, digest: Digest): Promise<void> {
    await guardPostgres(this.#sql, () =>
      this.#sql`DELETE FROM wharf_artifacts
                WHERE repository = ${repository} AND (digest = ${digest} OR subject = ${digest})`);
  }

  readonly artifactTable = "wharf_artifacts";

  async columns(table: string): Promise<TableColumn[] | null> {
    this.#scope.assertOutside();
    const rows = await guardPostgres(
      this.#sql,
      () =>
        this.#sql`SELECT column_name, is_identity, is_generated FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = ${table}
                ORDER BY ordinal_position`,
    );
    if (rows.length === 0) return null;
    return rows.map((r) => ({
      name: String(r.column_name),
      generated: r.is_identity === "YES" || r.is_generated !== "NEVER",
    }));
  }

  async pluginsWithTables(): Promise<string[]> {
    this.#scope.assertOutside();
    const rows = await guardPostgres(
      this.#sql,
      () => this.#sql`SELECT DISTINCT plugin FROM wharf_plugin_migrations ORDER BY plugin`,
    );
    return rows.map((r) => String(r.plugin));
  }

  /** The pool belongs to the metadata store, which closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Applies `plugin`'s pending migrations in one transaction, under the schema lock. */
  async #migrate(plugin: string, migrations: Migration[]): Promise<void> {
    await guardPostgres(this.#sql, () =>
      this.#sql.begin(async (tx) => {
        // Held to the end of the transaction: another process waits, then finds nothing to do.
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        const [row] = await tx`SELECT coalesce(max(version), 0) AS v
                               FROM wharf_plugin_migrations WHERE plugin = ${plugin}`;
        for (let version = Number(row.v) + 1; version <= migrations.length; version++) {
          try {
            await tx.unsafe(migrationText(migrations[version - 1], "postgres"));
          } catch (err) {
            const mapped = postgresUnavailable(err);
            throw mapped === err ? migrationFailed(plugin, version, err) : mapped;
          }
          await tx`INSERT INTO wharf_plugin_migrations (plugin, version, applied_at)
                   VALUES (${plugin}, ${version}, ${Date.now()})`;
        }
      }));
  }

  async #listArtifacts(
    repository: string,
    digest: string,
    by: "subject" | "digest",
  ): Promise<IndexedArtifact[]> {
    this.#scope.assertOutside();
    const rows = await guardPostgres(this.#sql, () =>
      this.#sql.unsafe(
        `SELECT ${ARTIFACT_COLUMNS} FROM wharf_artifacts
         WHERE repository = $1 AND ${by} = $2 ORDER BY kind, digest, plugin`,
        [repository, digest],
      ));
    return rows.map(indexedArtifact);
  }
}

/** The rows of a result with values as SQLite gives them (see {@link PluginQueries}). */
function rowsOf(result: postgres.RowList<postgres.Row[]>): SqlRow[] {
  const columns = result.columns ?? [];
  return result.map((row) => {
    const out: SqlRow = {};
    for (const column of columns) out[column.name] = valueOf(row[column.name], column.type);
    return out;
  });
}

function valueOf(value: unknown, type: number): SqlValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") {
    if (type === INT8) {
      const n = BigInt(value);
      return Number.isSafeInteger(Number(n)) ? Number(n) : n;
    }
    return type === NUMERIC ? Number(value) : value;
  }
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Uint8Array) return value;
  if (value instanceof Date) return value.getTime();
  return JSON.stringify(value);
}
