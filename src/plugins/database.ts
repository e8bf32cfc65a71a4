/**
 * The plugins' database: each plugin's own tables, named `p_<plugin>_<table>`, with per-plugin
 * migrations, and the shared artifact index. {@link PluginStore} has two implementations:
 * `SqlitePluginStore` (`<data>/plugins.db`, one process) and `PostgresPluginStore` (the
 * metadata database, shared by every process of a scaled-out registry).
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type {
  ArtifactIndex,
  ArtifactRecord,
  IndexedArtifact,
  Migration,
  PluginDatabase,
  SqlDialect,
} from "./api.ts";
import type { Digest } from "../oci/digest.ts";

/** Where the plugins' tables and the artifact index live. */
export interface PluginStore {
  readonly dialect: SqlDialect;
  /** The database view of plugin `plugin`. */
  database(plugin: string): PluginDatabase;
  /** The artifact index as plugin `plugin` writes to it. */
  artifacts(plugin: string): ArtifactIndex;
  /** Every plugin's records of a subject. */
  list(repository: string, subject: Digest): Promise<IndexedArtifact[]>;
  /** Drops every record of an artifact manifest or subject that left a repository. */
  forget(repository: string, digest: Digest): Promise<void>;
  /** The artifact index's table (`artifacts` in SQLite, `wharf_artifacts` in PostgreSQL). */
  readonly artifactTable: string;
  /** The columns of `table` in order, or null when there is no such table. */
  columns(table: string): Promise<TableColumn[] | null>;
  /** The plugins whose schema migrations ran in this database, sorted. */
  pluginsWithTables(): Promise<string[]>;
  /** Releases the store (the SQLite file; a PostgreSQL pool belongs to the metadata store). */
  close(): Promise<void>;
}

/** A column of a table, as `wharf migrate` copies rows between plugin databases. */
export interface TableColumn {
  name: string;
  /**
   * The database fills it: a generated column, an identity column (PostgreSQL), or the
   * `INTEGER PRIMARY KEY` that is SQLite's rowid. A copy leaves it for the target to number.
   */
  generated: boolean;
}

/** The columns of an artifact index row, in the order {@link indexedArtifact} reads them. */
export const ARTIFACT_COLUMNS = "repository, subject, digest, plugin, kind, type, status, detail";

/** The full name of plugin `plugin`'s table `name`; throws on a name that is no identifier. */
export function pluginTable(plugin: string, name: string): string {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`invalid table name "${name}"`);
  return `p_${plugin.replace(/-/g, "_")}_${name}`;
}

/** The text of a migration for `dialect`. */
export function migrationText(migration: Migration, dialect: SqlDialect): string {
  return typeof migration === "string" ? migration : migration[dialect];
}

/** The message of a failed plugin migration. */
export function migrationFailed(plugin: string, version: number, err: unknown): Error {
  return new Error(`plugin ${plugin} migration ${version} failed: ${(err as Error).message}`, {
    cause: err,
  });
}

/** An artifact index row (columns {@link ARTIFACT_COLUMNS}) as a record. */
export function indexedArtifact(row: Record<string, unknown>): IndexedArtifact {
  return {
    repository: String(row.repository),
    subject: String(row.subject) as Digest,
    digest: String(row.digest) as Digest,
    plugin: String(row.plugin),
    kind: String(row.kind),
    type: String(row.type),
    status: row.status as ArtifactRecord["status"],
    ...(row.detail ? { detail: JSON.parse(String(row.detail)) } : {}),
  };
}

/**
 * Knows whether code runs inside one of a store's plugin transactions. There, `ctx.db` and
 * `ctx.artifacts` refuse to run: on SQLite they would wait for the open transaction forever,
 * on PostgreSQL they would run outside it (and may wait on its row locks).
 */
export class TransactionScope {
  readonly #inside = new AsyncLocalStorage<{ open: boolean }>();

  /** Runs `fn` as the body of a transaction. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // Work the body started and left running is outside once the transaction has ended.
    const state = { open: true };
    try {
      return await this.#inside.run(state, fn);
    } finally {
      state.open = false;
    }
  }

  /** Throws when called from the body of a transaction. */
  assertOutside(): void {
    if (this.#inside.getStore()?.open) {
      throw new Error(
        "inside ctx.db.transaction(fn), query through its tx argument, not ctx.db or ctx.artifacts",
      );
    }
  }
}
