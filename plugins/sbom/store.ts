/**
 * The SBOM plugin's tables: indexed documents, their packages, and the tags of pushed manifests
 * (to name the images a package is found in).
 * @module
 */
import type { ArtifactRecord, Digest, PluginDatabase, SqlValue } from "../../src/plugins/api.ts";
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

/** The plugin's tables over its database. */
export class SbomStore {
  readonly #db: PluginDatabase;
  readonly #documents: string;
  readonly #packages: string;
  readonly #tags: string;

  constructor(db: PluginDatabase) {
    this.#db = db;
    this.#documents = db.table("documents");
    this.#packages = db.table("packages");
    this.#tags = db.table("tags");
    db.migrate([
      `CREATE TABLE ${this.#documents} (
         repository TEXT NOT NULL, subject TEXT NOT NULL, sbom TEXT NOT NULL,
         source TEXT NOT NULL, format TEXT, status TEXT NOT NULL, detail TEXT NOT NULL,
         indexed_at INTEGER NOT NULL,
         PRIMARY KEY (repository, subject, sbom)
       ) STRICT;
       CREATE INDEX ${this.#documents}_by_sbom ON ${this.#documents}(repository, sbom);
       CREATE TABLE ${this.#packages} (
         repository TEXT NOT NULL, subject TEXT NOT NULL, sbom TEXT NOT NULL,
         name TEXT NOT NULL COLLATE NOCASE, version TEXT, purl TEXT
       ) STRICT;
       CREATE INDEX ${this.#packages}_by_name ON ${this.#packages}(name, version);
       CREATE INDEX ${this.#packages}_by_purl ON ${this.#packages}(purl);
       CREATE INDEX ${this.#packages}_by_document ON ${this.#packages}(repository, subject, sbom);
       CREATE TABLE ${this.#tags} (
         repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
         PRIMARY KEY (repository, tag)
       ) STRICT;
       CREATE INDEX ${this.#tags}_by_digest ON ${this.#tags}(repository, digest);`,
    ]);
  }

  /** Replaces the document (and its packages) of (`repository`, `subject`, `sbom`). */
  saveDocument(row: DocumentRow, format: string | null, packages: SbomPackage[]): void {
    const db = this.#db;
    // One transaction: the loop below is synchronous, so no other request interleaves.
    db.run("BEGIN IMMEDIATE");
    try {
      this.#deleteDocument(row.repository, row.subject, row.sbom);
      db.run(
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
        db.run(
          `INSERT INTO ${this.#packages} (repository, subject, sbom, name, version, purl)
           VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
          ...params,
        );
      }
      db.run("COMMIT");
    } catch (err) {
      db.run("ROLLBACK");
      throw err;
    }
  }

  /** Documents of a subject attached by a cosign tag, other than `keep`. */
  legacyDocuments(repository: string, subject: Digest, keep: Digest): Digest[] {
    return this.#db.all(
      `SELECT sbom FROM ${this.#documents}
       WHERE repository = ? AND subject = ? AND source = 'tag' AND sbom != ?`,
      repository,
      subject,
      keep,
    ).map((r) => r.sbom as Digest);
  }

  /** Documents that an SBOM manifest holds (one per subject). */
  documentsOf(repository: string, sbom: Digest): DocumentRow[] {
    return this.#db.all(
      `SELECT repository, subject, sbom, source, status, detail FROM ${this.#documents}
       WHERE repository = ? AND sbom = ?`,
      repository,
      sbom,
    ).map((r) => ({ ...r, detail: JSON.parse(r.detail as string) }) as unknown as DocumentRow);
  }

  /** Removes one document and its packages. */
  removeDocument(repository: string, subject: Digest, sbom: Digest): void {
    this.#deleteDocument(repository, subject, sbom);
  }

  #deleteDocument(repository: string, subject: Digest, sbom: Digest): void {
    for (const table of [this.#documents, this.#packages]) {
      this.#db.run(
        `DELETE FROM ${table} WHERE repository = ? AND subject = ? AND sbom = ?`,
        repository,
        subject,
        sbom,
      );
    }
  }

  /** Forgets a manifest that left a repository: as an SBOM, as a subject, and its tags. */
  forget(repository: string, digest: Digest): void {
    for (const table of [this.#documents, this.#packages]) {
      this.#db.run(
        `DELETE FROM ${table} WHERE repository = ? AND (sbom = ? OR subject = ?)`,
        repository,
        digest,
        digest,
      );
    }
    this.#db.run(
      `DELETE FROM ${this.#tags} WHERE repository = ? AND digest = ?`,
      repository,
      digest,
    );
  }

  /** Remembers that `tag` points to `digest` now. */
  saveTag(repository: string, tag: string, digest: Digest): void {
    this.#db.run(
      `INSERT INTO ${this.#tags} (repository, tag, digest) VALUES (?, ?, ?)
       ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest`,
      repository,
      tag,
      digest,
    );
  }

  /** Tags last seen pointing to `digest` (the caller checks they still do). */
  tagsOf(repository: string, digest: Digest): string[] {
    return this.#db.all(
      `SELECT tag FROM ${this.#tags} WHERE repository = ? AND digest = ? ORDER BY tag`,
      repository,
      digest,
    ).map((r) => r.tag as string);
  }

  /** Forgets a tag that no longer points where it did. */
  removeTag(repository: string, tag: string): void {
    this.#db.run(`DELETE FROM ${this.#tags} WHERE repository = ? AND tag = ?`, repository, tag);
  }

  /**
   * A page of the distinct (repository, subject) pairs whose SBOMs contain the package, in
   * repository then subject order.
   */
  images(
    query: PackageQuery,
    offset: number,
    limit: number,
  ): { repository: string; subject: Digest }[] {
    const { where, params } = this.#where(query);
    return this.#db.all(
      `SELECT DISTINCT repository, subject FROM ${this.#packages} WHERE ${where}
       ORDER BY repository, subject LIMIT ? OFFSET ?`,
      ...params,
      limit,
      offset,
    ) as unknown as { repository: string; subject: Digest }[];
  }

  /** The matching packages in one image. */
  matches(query: PackageQuery, repository: string, subject: Digest): PackageMatch[] {
    const { where, params } = this.#where(query, "p.");
    return this.#db.all(
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
      clauses.push(`${prefix}name = ?`);
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
    return { where: clauses.join(" AND ") || "1", params };
  }
}
