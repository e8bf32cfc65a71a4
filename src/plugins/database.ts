/**
 * The plugins' database (`<data>/plugins.db`): each plugin's own tables, named
 * `p_<plugin>_<table>`, with per-plugin migrations; and the shared artifact index.
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import type { ArtifactIndex, ArtifactRecord, PluginDatabase, SqlValue } from "./api.ts";
import type { Digest } from "../oci/digest.ts";

/** One SQLite file for all plugins. */
export class PluginStore {
  readonly #db: DatabaseSync;

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

  /** The database view of plugin `plugin`. */
  database(plugin: string): PluginDatabase {
    const db = this.#db;
    const prefix = `p_${plugin.replace(/-/g, "_")}_`;
    const params = (values: SqlValue[]) => values as SQLInputValue[];
    return {
      table: (name) => {
        if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`invalid table name "${name}"`);
        return prefix + name;
      },
      migrate(migrations) {
        const row = db.prepare("SELECT max(version) AS v FROM plugin_migrations WHERE plugin = ?")
          .get(plugin) as { v: number | null };
        for (let version = (row.v ?? 0) + 1; version <= migrations.length; version++) {
          db.exec("BEGIN IMMEDIATE");
          try {
            db.exec(migrations[version - 1]);
            db.prepare("INSERT INTO plugin_migrations VALUES (?, ?, ?)").run(
              plugin,
              version,
              Date.now(),
            );
            db.exec("COMMIT");
          } catch (err) {
            db.exec("ROLLBACK");
            throw new Error(
              `plugin ${plugin} migration ${version} failed: ${(err as Error).message}`,
            );
          }
        }
      },
      all: (sql, ...values) => db.prepare(sql).all(...params(values)) as Record<string, SqlValue>[],
      get: (sql, ...values) =>
        db.prepare(sql).get(...params(values)) as Record<string, SqlValue> | undefined,
      run: (sql, ...values) => Number(db.prepare(sql).run(...params(values)).changes),
    };
  }

  /** The artifact index as plugin `plugin` writes to it. */
  artifacts(plugin: string): ArtifactIndex {
    const db = this.#db;
    return {
      record(record: ArtifactRecord) {
        db.prepare(
          `INSERT INTO artifacts (repository, subject, digest, plugin, kind, type, status, detail, updated_at)
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
      },
      list: (repository, subject) => listArtifacts(db, repository, subject),
      ofArtifact: (repository, digest) => listArtifacts(db, repository, digest, "digest"),
      remove(repository, digest) {
        db.prepare("DELETE FROM artifacts WHERE repository = ? AND digest = ? AND plugin = ?")
          .run(repository, digest, plugin);
      },
    };
  }

  /** Every plugin's records of a subject. */
  list(repository: string, subject: Digest): (ArtifactRecord & { plugin: string })[] {
    return listArtifacts(this.#db, repository, subject);
  }

  /** Drops every record of an artifact manifest or subject that left a repository. */
  forget(repository: string, digest: Digest): void {
    this.#db.prepare("DELETE FROM artifacts WHERE repository = ? AND (digest = ? OR subject = ?)")
      .run(repository, digest, digest);
  }

  close(): void {
    this.#db.close();
  }
}

function listArtifacts(
  db: DatabaseSync,
  repository: string,
  digest: string,
  by: "subject" | "digest" = "subject",
): (ArtifactRecord & { plugin: string })[] {
  const rows = db.prepare(
    `SELECT repository, subject, digest, plugin, kind, type, status, detail FROM artifacts
     WHERE repository = ? AND ${by} = ? ORDER BY kind, digest, plugin`,
  ).all(repository, digest) as Record<string, string | null>[];
  return rows.map((row) => ({
    repository: row.repository!,
    subject: row.subject as Digest,
    digest: row.digest as Digest,
    plugin: row.plugin!,
    kind: row.kind!,
    type: row.type!,
    status: row.status as ArtifactRecord["status"],
    ...(row.detail ? { detail: JSON.parse(row.detail) } : {}),
  }));
}
