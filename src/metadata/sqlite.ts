/**
 * The SQLite {@link MetadataStore} on `node:sqlite`: one writer connection, WAL, foreign keys,
 * and migrations applied at open.
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { MIGRATIONS } from "./migrations.ts";
import type {
  MetadataStore,
  NewManifest,
  Page,
  Referrer,
  RepositorySnapshot,
  StoredManifest,
  TagCondition,
  UploadRecord,
} from "./metadata_store.ts";

type Row = Record<string, SQLInputValue>;

/** Metadata in one SQLite file (or `:memory:`). Use {@link SqliteMetadataStore.open}. */
export class SqliteMetadataStore implements MetadataStore {
  readonly driver = "sqlite";
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens the database at `path`, applying pending migrations. */
  static open(path: string): SqliteMetadataStore {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA busy_timeout = 5000");
    const store = new SqliteMetadataStore(db);
    store.#migrate();
    return store;
  }

  /** Schema version after migrations. */
  get schemaVersion(): number {
    return Number(this.#one("SELECT max(version) AS v FROM schema_migrations")?.v ?? 0);
  }

  #migrate(): void {
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
    );
    const current = this.schemaVersion;
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      this.#transaction(() => {
        this.#db.exec(MIGRATIONS[version - 1]);
        this.#run(
          "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
          version,
          now(),
        );
      });
    }
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #one(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#statement(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#statement(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#statement(sql).run(...params).changes);
  }

  #transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  #repositoryId(name: string): number | null {
    const row = this.#one("SELECT id FROM repositories WHERE name = ?", name);
    return row ? Number(row.id) : null;
  }

  #ensureRepository(name: string): number {
    this.#run("INSERT OR IGNORE INTO repositories (name, created_at) VALUES (?, ?)", name, now());
    return this.#repositoryId(name)!;
  }

  ping(): Promise<void> {
    try {
      this.#one("SELECT 1");
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err); // a closed database rejects rather than throws
    }
  }

  repositoryExists(name: string): Promise<boolean> {
    return Promise.resolve(this.#repositoryId(name) !== null);
  }

  listRepositories(options: { last?: string; limit: number }): Promise<Page<string>> {
    const rows = this.#all(
      `SELECT name FROM repositories r
       WHERE name > ? AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
       ORDER BY name LIMIT ?`,
      options.last ?? "",
      options.limit + 1,
    );
    return Promise.resolve(page(rows.map((r) => String(r.name)), options.limit));
  }

  linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    this.#transaction(() => {
      const id = this.#ensureRepository(repository);
      const at = now();
      this.#run(
        "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING",
        digest,
        size,
        at,
      );
      this.#run(
        `INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES (?, ?, ?)
         ON CONFLICT DO UPDATE SET linked_at = excluded.linked_at`,
        id,
        digest,
        at,
      );
    });
    return Promise.resolve();
  }

  linkedBlobSize(repository: string, digest: Digest): Promise<number | null> {
    const row = this.#one(
      `SELECT b.size FROM repository_blobs rb
       JOIN repositories r ON r.id = rb.repository_id
       JOIN blobs b ON b.digest = rb.digest
       WHERE r.name = ? AND rb.digest = ?`,
      repository,
      digest,
    );
    return Promise.resolve(row ? Number(row.size) : null);
  }

  repositoriesWithBlob(digest: Digest): Promise<string[]> {
    const rows = this.#all(
      `SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
       WHERE rb.digest = ? ORDER BY r.name`,
      digest,
    );
    return Promise.resolve(rows.map((r) => String(r.name)));
  }

  unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    const changes = this.#run(
      `DELETE FROM repository_blobs
       WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?`,
      repository,
      digest,
    );
    return Promise.resolve(changes > 0);
  }

  missingBlobs(repository: string, digests: Digest[]): Promise<Digest[]> {
    return Promise.resolve(
      this.#missing(this.#repositoryId(repository), digests, "repository_blobs"),
    );
  }

  missingManifests(repository: string, digests: Digest[]): Promise<Digest[]> {
    return Promise.resolve(
      this.#missing(this.#repositoryId(repository), digests, "repository_manifests"),
    );
  }

  #missing(
    id: number | null,
    digests: Digest[],
    table: "repository_blobs" | "repository_manifests",
  ): Digest[] {
    return digests.filter((digest) =>
      id === null ||
      !this.#one(`SELECT 1 FROM ${table} WHERE repository_id = ? AND digest = ?`, id, digest)
    );
  }

  putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
    condition?: TagCondition,
  ): Promise<boolean> {
    const guarded = tag !== undefined && condition !== undefined;
    // BEGIN IMMEDIATE holds the write lock from the condition's read to the commit.
    const written = this.#transaction(() => {
      if (guarded && this.#tagDigest(repository, tag) !== condition.ifTagAt) return false;
      const id = this.#ensureRepository(repository);
      // Checked again inside the write transaction: garbage collection may have unlinked
      // content since the caller looked.
      const missing = [
        ...this.#missing(id, manifest.blobs, "repository_blobs"),
        ...this.#missing(id, manifest.manifests, "repository_manifests"),
      ];
      if (missing.length > 0) {
        throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references unknown content", {
          detail: { digests: missing },
        });
      }
      const at = now();
      const inserted = this.#run(
        `INSERT INTO manifests (digest, media_type, size, content, artifact_type, subject, annotations, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
        manifest.digest,
        manifest.mediaType,
        manifest.size,
        manifest.content,
        manifest.artifactType ?? null,
        manifest.subject ?? null,
        manifest.annotations ? JSON.stringify(manifest.annotations) : null,
        at,
      );
      if (inserted > 0) {
        for (const digest of manifest.blobs) {
          this.#run(
            "INSERT OR IGNORE INTO manifest_references (manifest, reference, kind) VALUES (?, ?, 'blob')",
            manifest.digest,
            digest,
          );
        }
        for (const digest of manifest.manifests) {
          this.#run(
            "INSERT OR IGNORE INTO manifest_references (manifest, reference, kind) VALUES (?, ?, 'manifest')",
            manifest.digest,
            digest,
          );
        }
      }
      this.#run(
        `INSERT INTO repository_manifests (repository_id, digest, pushed_at) VALUES (?, ?, ?)
         ON CONFLICT DO UPDATE SET pushed_at = excluded.pushed_at`,
        id,
        manifest.digest,
        at,
      );
      if (tag !== undefined) {
        this.#run(
          `INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
          id,
          tag,
          manifest.digest,
          at,
        );
      }
      return true;
    });
    return Promise.resolve(written);
  }

  #tagDigest(repository: string, tag: string): Digest | null {
    const row = this.#one(
      `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id
       WHERE r.name = ? AND t.name = ?`,
      repository,
      tag,
    );
    return row ? String(row.digest) as Digest : null;
  }

  getManifest(repository: string, digest: Digest): Promise<StoredManifest | null> {
    const row = this.#one(
      `SELECT m.media_type, m.size, m.content FROM manifests m
       JOIN repository_manifests rm ON rm.digest = m.digest
       JOIN repositories r ON r.id = rm.repository_id
       WHERE r.name = ? AND m.digest = ?`,
      repository,
      digest,
    );
    if (!row) return Promise.resolve(null);
    return Promise.resolve({
      digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      content: row.content as Uint8Array<ArrayBuffer>,
    });
  }

  getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | null> {
    const row = this.#one(
      `SELECT m.digest, m.media_type, m.size, m.content FROM tags t
       JOIN repositories r ON r.id = t.repository_id
       JOIN manifests m ON m.digest = t.digest
       WHERE r.name = ? AND t.name = ?`,
      repository,
      tag,
    );
    if (!row) return Promise.resolve(null);
    return Promise.resolve({
      digest: String(row.digest) as Digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      content: row.content as Uint8Array<ArrayBuffer>,
    });
  }

  resolveTag(repository: string, tag: string): Promise<Digest | null> {
    return Promise.resolve(this.#tagDigest(repository, tag));
  }

  listTags(repository: string, options: { last?: string; limit: number }): Promise<Page<string>> {
    const rows = this.#all(
      `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
       WHERE r.name = ? AND t.name > ? ORDER BY t.name LIMIT ?`,
      repository,
      options.last ?? "",
      options.limit + 1,
    );
    return Promise.resolve(page(rows.map((r) => String(r.name)), options.limit));
  }

  deleteTag(repository: string, tag: string): Promise<boolean> {
    const changes = this.#run(
      "DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?",
      repository,
      tag,
    );
    return Promise.resolve(changes > 0);
  }

  deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    // Tags on the manifest go with it (ON DELETE CASCADE from repository_manifests).
    const changes = this.#run(
      `DELETE FROM repository_manifests
       WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?`,
      repository,
      digest,
    );
    return Promise.resolve(changes > 0);
  }

  parentManifests(repository: string, digest: Digest): Promise<Digest[]> {
    const rows = this.#all(
      `SELECT mr.manifest FROM manifest_references mr
       JOIN repository_manifests rm ON rm.digest = mr.manifest
       JOIN repositories r ON r.id = rm.repository_id
       WHERE r.name = ? AND mr.reference = ? AND mr.kind = 'manifest' ORDER BY mr.manifest`,
      repository,
      digest,
    );
    return Promise.resolve(rows.map((row) => String(row.manifest) as Digest));
  }

  referrers(repository: string, digest: Digest, artifactType?: string): Promise<Referrer[]> {
    const rows = this.#all(
      `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
       JOIN repository_manifests rm ON rm.digest = m.digest
       JOIN repositories r ON r.id = rm.repository_id
       WHERE r.name = ? AND m.subject = ? AND (? IS NULL OR m.artifact_type = ?)
       ORDER BY m.created_at, m.digest`,
      repository,
      digest,
      artifactType ?? null,
      artifactType ?? null,
    );
    return Promise.resolve(rows.map((row) => ({
      digest: String(row.digest) as Digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      ...(row.artifact_type !== null ? { artifactType: String(row.artifact_type) } : {}),
      ...(row.annotations !== null ? { annotations: JSON.parse(String(row.annotations)) } : {}),
    })));
  }

  createUpload(id: string, repository: string): Promise<void> {
    this.#transaction(() => {
      const repositoryId = this.#ensureRepository(repository);
      const at = now();
      this.#run(
        "INSERT INTO uploads (id, repository_id, started_at, updated_at) VALUES (?, ?, ?, ?)",
        id,
        repositoryId,
        at,
        at,
      );
    });
    return Promise.resolve();
  }

  getUpload(id: string): Promise<UploadRecord | null> {
    const row = this.#one(
      `SELECT u.id, r.name, u.started_at FROM uploads u JOIN repositories r ON r.id = u.repository_id
       WHERE u.id = ?`,
      id,
    );
    return Promise.resolve(
      row
        ? { id: String(row.id), repository: String(row.name), startedAt: Number(row.started_at) }
        : null,
    );
  }

  touchUpload(id: string): Promise<void> {
    this.#run("UPDATE uploads SET updated_at = ? WHERE id = ?", now(), id);
    return Promise.resolve();
  }

  deleteUpload(id: string): Promise<void> {
    this.#run("DELETE FROM uploads WHERE id = ?", id);
    return Promise.resolve();
  }

  allRepositories(): Promise<string[]> {
    return Promise.resolve(
      this.#all("SELECT name FROM repositories ORDER BY name").map((r) => String(r.name)),
    );
  }

  snapshot(repository: string): Promise<RepositorySnapshot> {
    const id = this.#repositoryId(repository);
    if (id === null) return Promise.resolve({ manifests: [], tags: [], links: [] });
    const references = new Map<string, { children: Digest[]; blobs: Digest[] }>();
    for (
      const row of this.#all(
        `SELECT mr.manifest, mr.reference, mr.kind FROM manifest_references mr
         JOIN repository_manifests rm ON rm.digest = mr.manifest WHERE rm.repository_id = ?`,
        id,
      )
    ) {
      const entry = references.get(String(row.manifest)) ?? { children: [], blobs: [] };
      (row.kind === "manifest" ? entry.children : entry.blobs).push(
        String(row.reference) as Digest,
      );
      references.set(String(row.manifest), entry);
    }
    const manifests = this.#all(
      `SELECT rm.digest, rm.pushed_at, m.subject FROM repository_manifests rm
       JOIN manifests m ON m.digest = rm.digest WHERE rm.repository_id = ?`,
      id,
    ).map((row) => ({
      digest: String(row.digest) as Digest,
      pushedAt: Number(row.pushed_at),
      subject: row.subject === null ? null : String(row.subject) as Digest,
      ...(references.get(String(row.digest)) ?? { children: [], blobs: [] }),
    }));
    const tags = this.#all("SELECT name, digest, updated_at FROM tags WHERE repository_id = ?", id)
      .map((row) => ({
        name: String(row.name),
        digest: String(row.digest) as Digest,
        updatedAt: Number(row.updated_at),
      }));
    const links = this.#all(
      `SELECT rb.digest, b.size, rb.linked_at FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
       WHERE rb.repository_id = ?`,
      id,
    ).map((row) => ({
      digest: String(row.digest) as Digest,
      size: Number(row.size),
      linkedAt: Number(row.linked_at),
    }));
    return Promise.resolve({ manifests, tags, links });
  }

  deleteTagIf(repository: string, tag: string, digest: Digest, before: number): Promise<boolean> {
    return Promise.resolve(
      this.#run(
        `DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?)
         AND name = ? AND digest = ? AND updated_at < ?`,
        repository,
        tag,
        digest,
        before,
      ) > 0,
    );
  }

  deleteUntaggedManifest(repository: string, digest: Digest, before: number): Promise<boolean> {
    return Promise.resolve(
      this.#run(
        `DELETE FROM repository_manifests AS rm
         WHERE rm.repository_id = (SELECT id FROM repositories WHERE name = ?) AND rm.digest = ?
           AND rm.pushed_at < ?
           AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = rm.repository_id AND t.digest = rm.digest)
           AND NOT EXISTS (
             SELECT 1 FROM manifest_references mr
             JOIN repository_manifests parent ON parent.digest = mr.manifest
               AND parent.repository_id = rm.repository_id
             WHERE mr.reference = rm.digest AND mr.kind = 'manifest')`,
        repository,
        digest,
        before,
      ) > 0,
    );
  }

  unlinkUnusedBlob(repository: string, digest: Digest, before: number): Promise<boolean> {
    return Promise.resolve(
      this.#run(
        `DELETE FROM repository_blobs AS rb
         WHERE rb.repository_id = (SELECT id FROM repositories WHERE name = ?) AND rb.digest = ?
           AND rb.linked_at < ?
           AND NOT EXISTS (
             SELECT 1 FROM manifest_references mr
             JOIN repository_manifests rm ON rm.digest = mr.manifest AND rm.repository_id = rb.repository_id
             WHERE mr.reference = rb.digest AND mr.kind = 'blob')`,
        repository,
        digest,
        before,
      ) > 0,
    );
  }

  deleteOrphanManifests(): Promise<number> {
    return Promise.resolve(
      this.#run(
        `DELETE FROM manifests WHERE NOT EXISTS
           (SELECT 1 FROM repository_manifests rm WHERE rm.digest = manifests.digest)`,
      ),
    );
  }

  orphanBlobs(before: number): Promise<{ digest: Digest; size: number }[]> {
    return Promise.resolve(
      this.#all(
        `SELECT digest, size FROM blobs b WHERE created_at < ?
           AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.reference = b.digest)`,
        before,
      ).map((row) => ({ digest: String(row.digest) as Digest, size: Number(row.size) })),
    );
  }

  deleteBlobIfOrphan(digest: Digest): Promise<boolean> {
    return Promise.resolve(
      this.#run(
        `DELETE FROM blobs WHERE digest = ?
           AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.reference = blobs.digest)`,
        digest,
      ) > 0,
    );
  }

  blobKnown(digest: Digest): Promise<boolean> {
    return Promise.resolve(this.#one("SELECT 1 FROM blobs WHERE digest = ?", digest) !== undefined);
  }

  idleUploads(before: number): Promise<UploadRecord[]> {
    return Promise.resolve(
      this.#all(
        `SELECT u.id, r.name, u.started_at FROM uploads u JOIN repositories r ON r.id = u.repository_id
         WHERE u.updated_at < ?`,
        before,
      ).map((row) => ({
        id: String(row.id),
        repository: String(row.name),
        startedAt: Number(row.started_at),
      })),
    );
  }

  repositorySize(repository: string): Promise<number> {
    const row = this.#one(
      `SELECT coalesce(sum(b.size), 0) AS total FROM repository_blobs rb
       JOIN blobs b ON b.digest = rb.digest
       WHERE rb.repository_id = (SELECT id FROM repositories WHERE name = ?)`,
      repository,
    );
    return Promise.resolve(Number(row?.total ?? 0));
  }

  now(): number {
    return Date.now();
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

function now(): number {
  return Date.now();
}

function page<T>(rows: T[], limit: number): Page<T> {
  return { items: rows.slice(0, limit), more: rows.length > limit };
}
