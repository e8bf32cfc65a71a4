/**
 * The SBOM plugin's tables: indexed documents, their packages, and the tags of pushed manifests
 * (to name the images a package is found in).
 * @module
 */
import type {
  ArtifactRecord,
  Digest,
  Migration,
  PluginDatabase,
  PluginQueries,
  SqlValue,
} from "../../src/plugins/api.ts";
import type { SbomPackage } from "./document.ts";

/** One indexed SBOM document (a row of `documents`). */
export interface DocumentRow {
  repository: string;
  subject: Digest;
  sbom: Digest;
  source: "tag" | "referrer";
  status: ArtifactRecord["status"];
  detail: Record<string, unknown>;
}

/** A package match of a search. */
export interface PackageMatch {
  repository: string;
  subject: Digest;
  sbom: Digest;
  format: string;
  name: string;
  version: string | null;
  purl: string | null;
}

/** What to search for: a package name (any case) or a purl, optionally one version. */
export interface PackageQuery {
  name?: string;
  purl?: string;
  version?: string;
}

const INSERT_CHUNK = 400;

/** The plugin's tables over its database. Use {@link SbomStore.open}. */
export class SbomStore {
  readonly #db: PluginDatabase;
  readonly #documents: string;
  readonly #packages: string;
  readonly #tags: string;

  private constructor(db: PluginDatabase) {
    this.#db = db;
    this.#documents = db.table("documents");
    this.#packages = db.table("packages");
    this.#tags = db.table("tags");
  }

  /** The store over `db`, its tables migrated. */
  static async open(db: PluginDatabase): Promise<SbomStore> {
    const store = new SbomStore(db);
    await db.migrate([store.#schema()]);
    return store;
  }

  #schema(): Migration {
    const [documents, packages, tags] = [this.#documents, this.#packages, this.#tags];
    return {
      sqlite: `CREATE TABLE ${documents} (
         repository TEXT NOT NULL, subject TEXT NOT NULL, sbom TEXT NOT NULL,
         source TEXT NOT NULL, format TEXT, status TEXT NOT NULL, detail TEXT NOT NULL,
         indexed_at INTEGER NOT NULL,
         PRIMARY KEY (repository, subject, sbom)
       ) STRICT;
       CREATE INDEX ${documents}_by_sbom ON ${documents}(repository, sbom);
       CREATE TABLE ${packages} (
         repository TEXT NOT NULL, subject TEXT NOT NULL, sbom TEXT NOT NULL,
         name TEXT NOT NULL COLLATE NOCASE, version TEXT, purl TEXT
       ) STRICT;
       CREATE INDEX ${packages}_by_name ON ${packages}(name, version);
       CREATE INDEX ${packages}_by_purl ON ${packages}(purl);
       CREATE INDEX ${packages}_by_document ON ${packages}(repository, subject, sbom);
       CREATE TABLE ${tags} (
         repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
         PRIMARY KEY (repository, tag)
       ) STRICT;
       CREATE INDEX ${tags}_by_digest ON ${tags}(repository, digest);`,
      postgres: `CREATE TABLE ${documents} (
         repository text COLLATE "C" NOT NULL, subject text COLLATE "C" NOT NULL,
         sbom text COLLATE "C" NOT NULL, source text NOT NULL, format text,
         status text NOT NULL, detail text NOT NULL, indexed_at bigint NOT NULL,
         PRIMARY KEY (repository, subject, sbom)
       );
       CREATE INDEX ${documents}_by_sbom ON ${documents}(repository, sbom);
       CREATE TABLE ${packages} (
         repository text COLLATE "C" NOT NULL, subject text COLLATE "C" NOT NULL,
         sbom text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
         version text COLLATE "C", purl text
       );
       CREATE INDEX ${packages}_by_name ON ${packages}(lower(name), version);
       CREATE INDEX ${packages}_by_purl ON ${packages}(purl);
       CREATE INDEX ${packages}_by_document ON ${packages}(repository, subject, sbom);
       CREATE TABLE ${tags} (
         repository text COLLATE "C" NOT NULL, tag text COLLATE "C" NOT NULL,
         digest text COLLATE "C" NOT NULL,
         PRIMARY KEY (repository, tag)
       );
       CREATE INDEX ${tags}_by_digest ON ${tags}(repository, digest);`,
    };
  }

  /** Replaces the document (and its packages) of (`repository`, `subject`, `sbom`). */
  async saveDocument(row: DocumentRow, format: string | null, packages: SbomPackage[]) {
    await this.#db.transaction(async (tx) => {
      await this.#deleteDocument(tx, row.repository, row.subject, row.sbom);
      await tx.run(
        `INSERT INTO ${this.#documents}
           (repository, subject, sbom, source, format, status, detail, indexed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        row.repository,
        row.subject,
        row.sbom,
        row.source,
        format,
        row.status,
        JSON.stringify(row.detail),
        Date.now(),
      );
      for (let i = 0; i < packages.length; i += INSERT_CHUNK) {
        const chunk = packages.slice(i, i + INSERT_CHUNK);
        const params: SqlValue[] = [];
        for (const p of chunk) {
          params.push(row.repository, row.subject, row.sbom, p.name, p.version, p.purl);
        }
        await tx.run(
          `INSERT INTO ${this.#packages} (repository, subject, sbom, name, version, purl)
           VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
          ...params,
        );
      }
    });
  }

  /** Documents of a subject attached by a cosign tag, other than `keep`. */
  async legacyDocuments(repository: string, subject: Digest, keep: Digest): Promise<Digest[]> {
    const rows = await this.#db.all(
      `SELECT sbom FROM ${this.#documents}
       WHERE repository = ? AND subject = ? AND source = 'tag' AND sbom != ?`,
      repository,
      subject,
      keep,
    );
    return rows.map((r) => r.sbom as Digest);
  }

  /** Documents that an SBOM manifest holds (one per subject). */
  async documentsOf(repository: string, sbom: Digest): Promise<DocumentRow[]> {
    const rows = await this.#db.all(
      `SELECT repository, subject, sbom, source, status, detail FROM ${this.#documents}
       WHERE repository = ? AND sbom = ?`,
      repository,
      sbom,
    );
    return rows.map((r) =>
      ({ ...r, detail: JSON.parse(r.detail as string) }) as unknown as DocumentRow
    );
  }

  /** Removes one document and its packages. */
  async removeDocument(repository: string, subject: Digest, sbom: Digest): Promise<void> {
    await this.#db.transaction((tx) => this.#deleteDocument(tx, repository, subject, sbom));
  }

  async #deleteDocument(
    db: PluginQueries,
    repository: string,
    subject: Digest,
    sbom: Digest,
  ): Promise<void> {
    for (const table of [this.#documents, this.#packages]) {
      await db.run(
        `DELETE FROM ${table} WHERE repository = ? AND subject = ? AND sbom = ?`,
        repository,
        subject,
        sbom,
      );
    }
  }

  /** Forgets a manifest that left a repository: as an SBOM, as a subject, and its tags. */
  async forget(repository: string, digest: Digest): Promise<void> {
    await this.#db.transaction(async (tx) => {
      for (const table of [this.#documents, this.#packages]) {
        await tx.run(
          `DELETE FROM ${table} WHERE repository = ? AND (sbom = ? OR subject = ?)`,
          repository,
          digest,
          digest,
        );
      }
      await tx.run(
        `DELETE FROM ${this.#tags} WHERE repository = ? AND digest = ?`,
        repository,
        digest,
      );
    });
  }

  /** Remembers that `tag` points to `digest` now. */
  async saveTag(repository: string, tag: string, digest: Digest): Promise<void> {
    await this.#db.run(
      `INSERT INTO ${this.#tags} (repository, tag, digest) VALUES (?, ?, ?)
       ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest`,
      repository,
      tag,
      digest,
    );
  }

  /** Tags last seen pointing to `digest` (the caller checks they still do). */
  async tagsOf(repository: string, digest: Digest): Promise<string[]> {
    const rows = await this.#db.all(
      `SELECT tag FROM ${this.#tags} WHERE repository = ? AND digest = ? ORDER BY tag`,
      repository,
      digest,
    );
    return rows.map((r) => r.tag as string);
  }

  /** Forgets a tag that no longer points where it did. */
  async removeTag(repository: string, tag: string): Promise<void> {
    await this.#db.run(
      `DELETE FROM ${this.#tags} WHERE repository = ? AND tag = ?`,
      repository,
      tag,
    );
  }

  /**
   * A page of the distinct (repository, subject) pairs whose SBOMs contain the package, in
   * repository then subject order.
   */
  async images(
    query: PackageQuery,
    offset: number,
    limit: number,
  ): Promise<{ repository: string; subject: Digest }[]> {
    const { where, params } = this.#where(query);
    return await this.#db.all(
      `SELECT DISTINCT repository, subject FROM ${this.#packages} WHERE ${where}
       ORDER BY repository, subject LIMIT ? OFFSET ?`,
      ...params,
      limit,
      offset,
    ) as unknown as { repository: string; subject: Digest }[];
  }

  /** The matching packages in one image. */
  async matches(query: PackageQuery, repository: string, subject: Digest): Promise<PackageMatch[]> {
    const { where, params } = this.#where(query, "p.");
    return await this.#db.all(
      `SELECT p.repository, p.subject, p.sbom, d.format, p.name, p.version, p.purl
       FROM ${this.#packages} p JOIN ${this.#documents} d
         ON d.repository = p.repository AND d.subject = p.subject AND d.sbom = p.sbom
       WHERE p.repository = ? AND p.subject = ? AND ${where}
       ORDER BY p.name, p.version, p.sbom`,
      repository,
      subject,
      ...params,
    ) as unknown as PackageMatch[];
  }

  #where(query: PackageQuery, prefix = ""): { where: string; params: SqlValue[] } {
    const clauses: string[] = [];
    const params: SqlValue[] = [];
    if (query.name !== undefined) {
      // Names match in any case: SQLite's column is NOCASE, PostgreSQL indexes lower(name).
      clauses.push(
        this.#db.dialect === "postgres" ? `lower(${prefix}name) = lower(?)` : `${prefix}name = ?`,
      );
      params.push(query.name);
    }
    if (query.purl !== undefined) {
      clauses.push(`${prefix}purl = ?`);
      params.push(query.purl);
    }
    if (query.version !== undefined) {
      clauses.push(`${prefix}version = ?`);
      params.push(query.version);
    }
    return { where: clauses.join(" AND ") || "TRUE", params };
  }
}
