/**
 * The PostgreSQL {@link MetadataStore} on `npm:postgres`, for several Wharf processes sharing
 * one database. Same tables as the SQLite store ({@link POSTGRES_MIGRATIONS} mirrors
 * `migrations.ts` version for version), migrations under an advisory lock so that processes
 * starting together apply them once, READ COMMITTED transactions with explicit row locks where
 * a push and garbage collection could otherwise both act on an old snapshot.
 *
 * Lock protocol (why it is safe across processes):
 * - `putManifest` takes `FOR SHARE` on its repository row before re-checking the content it
 *   references; the repository-level GC deletes (`deleteUntaggedManifest`, `unlinkUnusedBlob`)
 *   take `FOR UPDATE` on it first. So a GC delete either runs before the push's re-check (which
 *   then fails with MANIFEST_BLOB_UNKNOWN) or after the push committed (and its fresh snapshot
 *   sees the new references). Pushes do not block each other.
 * - `deleteBlobIfOrphan` locks the blob row `FOR UPDATE` before its guarded delete; `linkBlob`'s
 *   foreign key check locks it `FOR KEY SHARE`, and retries when the blob row vanished.
 * - Tags move with one upsert; concurrent moves of a tag serialize on its row and the last
 *   committer wins. A statement that fails rolls back its whole transaction: never a half tag.
 *   A guarded move (`ifTagAt`) is an UPDATE conditioned on the old digest, or an INSERT that does
 *   nothing on conflict: either re-checks the row a concurrent move committed, so it never
 *   overwrites a move it did not see; when it writes no row the whole push rolls back.
 * @module
 */
import postgres from "postgres";
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
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

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;
type Row = postgres.Row;

/**
 * The schema of `migrations.ts` in PostgreSQL: bytea for manifest bytes, bigint timestamps
 * (milliseconds) and sizes, `COLLATE "C"` wherever SQLite's byte order sorts a listing.
 * Index + 1 is the version; keep it in step with `MIGRATIONS`.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE repositories (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL
  );

  CREATE TABLE blobs (
    digest text COLLATE "C" PRIMARY KEY,
    size bigint NOT NULL,
    created_at bigint NOT NULL
  );

  CREATE TABLE repository_blobs (
    repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest text COLLATE "C" NOT NULL REFERENCES blobs(digest),
    linked_at bigint NOT NULL,
    PRIMARY KEY (repository_id, digest)
  );
  CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

  CREATE TABLE manifests (
    digest text COLLATE "C" PRIMARY KEY,
    media_type text NOT NULL,
    size bigint NOT NULL,
    content bytea NOT NULL,
    artifact_type text,
    subject text COLLATE "C",
    annotations text,
    created_at bigint NOT NULL
  );
  CREATE INDEX manifests_by_subject ON manifests(subject) WHERE subject IS NOT NULL;

  CREATE TABLE manifest_references (
    manifest text COLLATE "C" NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
    reference text COLLATE "C" NOT NULL,
    kind text NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (manifest, reference)
  );
  CREATE INDEX manifest_references_by_reference ON manifest_references(reference);

  CREATE TABLE repository_manifests (
    repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest text COLLATE "C" NOT NULL REFERENCES manifests(digest),
    pushed_at bigint NOT NULL,
    PRIMARY KEY (repository_id, digest)
  );
  CREATE INDEX repository_manifests_by_digest ON repository_manifests(digest);

  CREATE TABLE tags (
    repository_id bigint NOT NULL,
    name text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest)
      REFERENCES repository_manifests(repository_id, digest) ON DELETE CASCADE
  );
  CREATE INDEX tags_by_digest ON tags(repository_id, digest);

  CREATE TABLE uploads (
    id text PRIMARY KEY,
    repository_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    started_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  `,
];

/** Advisory lock key held while migrating ("Wharf" in ASCII, fits a bigint). */
const MIGRATION_LOCK = 0x5768617266;

/** Options of {@link PostgresMetadataStore.open}. */
export interface PostgresMetadataStoreOptions {
  /** Connections in the pool. Default 10. */
  maxConnections?: number;
  /** Seconds to wait for a connection before answering UNAVAILABLE. Default 5. */
  connectTimeoutSeconds?: number;
  /** Milliseconds one statement may run (server-side `statement_timeout`). Default 10000. */
  statementTimeoutMs?: number;
}

/** A guarded tag write found the tag moved: thrown to roll its transaction back. */
class TagMovedError extends Error {
  override name = "TagMovedError";
}

/** SQLSTATEs worth running a transaction again for: serialization, deadlock, a racing GC. */
const RETRYABLE = new Set(["40001", "40P01", "23503"]);
/** SQLSTATEs of a connection the server terminated (shutdown, crash): the statement never ran. */
const TERMINATED = new Set(["57P01", "57P02"]);
const ATTEMPTS = 5;

/**
 * Metadata in a PostgreSQL database shared by several processes.
 *
 * @example
 * ```ts
 * const metadata = await PostgresMetadataStore.open("postgres://wharf@db/wharf");
 * await metadata.resolveTag("library/alpine", "latest");
 * await metadata.close();
 * ```
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly driver = "postgres";
  readonly #sql: Sql;
  #closing: Promise<void> | null = null;

  /** Database clock minus this process's clock, measured at open and every minute after. */
  #clockOffset = 0;
  #clockTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(sql: Sql) {
    this.#sql = sql;
  }

  /** This process's clock corrected to the database's (to within half a round trip). */
  now(): number {
    return Date.now() + this.#clockOffset;
  }

  async #measureClock(): Promise<void> {
    const before = Date.now();
    const [row] = await this
      .#sql`SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS t`;
    const after = Date.now();
    this.#clockOffset = Math.round(Number(row.t) - (before + after) / 2);
  }

  /**
   * The connection pool, for the other shared tables of a process (plugin tables, sync
   * history, coordination) so that one process keeps one pool. Wrap calls in
   * {@link postgresUnavailable} to map connection failures to 503.
   */
  get sql(): Sql {
    return this.#sql;
  }

  /**
   * Connects to `url` and applies pending migrations. Throws `RegistryError("UNAVAILABLE")`
   * (503) when the database cannot be reached.
   */
  static async open(
    url: string,
    options: PostgresMetadataStoreOptions = {},
  ): Promise<PostgresMetadataStore> {
    const sql = postgres(url, {
      max: options.maxConnections ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 5,
      idle_timeout: 60,
      onnotice: () => {},
      connection: {
        statement_timeout: options.statementTimeoutMs ?? 10_000,
        application_name: "wharf",
      },
    });
    const store = new PostgresMetadataStore(sql);
    try {
      await store.#guard(() => store.#migrate());
      await store.#guard(() => store.#measureClock());
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw err;
    }
    // Clocks drift: measure again every minute (a failed measurement keeps the last offset).
    store.#clockTimer = setInterval(() => store.#measureClock().catch(() => {}), 60_000);
    Deno.unrefTimer(store.#clockTimer);
    return store;
  }

  /** Schema version after migrations. */
  async schemaVersion(): Promise<number> {
    const [row] = await this.#guard(() =>
      this.#sql`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`
    );
    return Number(row.v);
  }

  async #migrate(): Promise<void> {
    await this.#sql.begin(async (tx) => {
      // Held to the end of this transaction: a second process waits, then finds nothing to do.
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx.unsafe(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
      );
      const [row] = await tx`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
      for (let version = Number(row.v) + 1; version <= POSTGRES_MIGRATIONS.length; version++) {
        await tx.unsafe(POSTGRES_MIGRATIONS[version - 1]);
        await tx`INSERT INTO schema_migrations (version, applied_at) VALUES (${version}, ${this.now()})`;
      }
    });
  }

  /** Runs `fn`, turning connection failures and timeouts into UNAVAILABLE. */
  #guard<T>(fn: () => Promise<T>): Promise<T> {
    return guardPostgres(this.#sql, fn);
  }

  /** Runs `fn` in a transaction, again when it lost a race it can win on a retry. */
  #transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#guard(async () => {
      for (let attempt = 1;; attempt++) {
        try {
          return await this.#sql.begin(fn) as T;
        } catch (err) {
          if (attempt >= ATTEMPTS || !RETRYABLE.has(sqlState(err) ?? "")) throw err;
          await new Promise((resolve) => setTimeout(resolve, attempt * 5 * Math.random()));
        }
      }
    });
  }

  #query(fn: (sql: Sql) => Promise<postgres.RowList<Row[]>>): Promise<postgres.RowList<Row[]>> {
    return this.#guard(() => fn(this.#sql));
  }

  async #repositoryId(sql: Sql | Tx, name: string, lock = ""): Promise<number | null> {
    const [row] = await sql.unsafe(`SELECT id FROM repositories WHERE name = $1 ${lock}`, [name]);
    return row ? Number(row.id) : null;
  }

  /** The repository's id, creating it; one round trip when it exists already. */
  async #ensureRepository(tx: Tx, name: string, lock = ""): Promise<number> {
    const existing = await this.#repositoryId(tx, name, lock);
    if (existing !== null) return existing;
    await tx`INSERT INTO repositories (name, created_at) VALUES (${name}, ${this.now()})
             ON CONFLICT (name) DO NOTHING`;
    return (await this.#repositoryId(tx, name, lock))!;
  }

  async ping(): Promise<void> {
    await this.#query((sql) => sql`SELECT 1`);
  }

  async repositoryExists(name: string): Promise<boolean> {
    return await this.#guard(() => this.#repositoryId(this.#sql, name)) !== null;
  }

  async listRepositories(options: { last?: string; limit: number }): Promise<Page<string>> {
    const rows = await this.#query((sql) =>
      sql`SELECT name FROM repositories r
          WHERE name > ${options.last ?? ""}
            AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
          ORDER BY name LIMIT ${options.limit + 1}`
    );
    return page(rows.map((r) => String(r.name)), options.limit);
  }

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    await this.#transaction(async (tx) => {
      const id = await this.#ensureRepository(tx, repository);
      const at = this.now();
      await tx`INSERT INTO blobs (digest, size, created_at) VALUES (${digest}, ${size}, ${at})
               ON CONFLICT (digest) DO NOTHING`;
      // A concurrent deleteBlobIfOrphan may remove the row just seen: the foreign key check
      // then fails with 23503 and the transaction runs again, inserting it anew.
      await tx`INSERT INTO repository_blobs (repository_id, digest, linked_at)
               VALUES (${id}, ${digest}, ${at})
               ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at`;
    });
  }

  async linkedBlobSize(repository: string, digest: Digest): Promise<number | null> {
    const [row] = await this.#query((sql) =>
      sql`SELECT b.size FROM repository_blobs rb
          JOIN repositories r ON r.id = rb.repository_id
          JOIN blobs b ON b.digest = rb.digest
          WHERE r.name = ${repository} AND rb.digest = ${digest}`
    );
    return row ? Number(row.size) : null;
  }

  async repositoriesWithBlob(digest: Digest): Promise<string[]> {
    const rows = await this.#query((sql) =>
      sql`SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
          WHERE rb.digest = ${digest} ORDER BY r.name`
    );
    return rows.map((r) => String(r.name));
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    const result = await this.#query((sql) =>
      sql`DELETE FROM repository_blobs
          WHERE repository_id = (SELECT id FROM repositories WHERE name = ${repository})
            AND digest = ${digest}`
    );
    return result.count > 0;
  }

  async missingBlobs(repository: string, digests: Digest[]): Promise<Digest[]> {
    return await this.#guard(async () =>
      missing(this.#sql, await this.#repositoryId(this.#sql, repository), digests, "blobs")
    );
  }

  async missingManifests(repository: string, digests: Digest[]): Promise<Digest[]> {
    return await this.#guard(async () =>
      missing(this.#sql, await this.#repositoryId(this.#sql, repository), digests, "manifests")
    );
  }

  async putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
    condition?: TagCondition,
  ): Promise<boolean> {
    const guarded = tag !== undefined && condition !== undefined;
    const upsertTag = guarded ? null : tag ?? null;
    try {
      await this.#put(repository, manifest, upsertTag, guarded ? { tag, condition } : undefined);
      return true;
    } catch (err) {
      if (err instanceof TagMovedError) return false;
      throw err;
    }
  }

  /** The writes of `putManifest`: `tag` upserted, or `guarded` moved only if its condition holds. */
  async #put(
    repository: string,
    manifest: NewManifest,
    tag: string | null,
    guarded?: { tag: string; condition: TagCondition },
  ): Promise<void> {
    await this.#transaction(async (tx) => {
      // FOR SHARE: a GC delete in this repository waits for this push, or this push for it.
      const id = await this.#ensureRepository(tx, repository, "FOR SHARE");
      // Checked again inside the write transaction: garbage collection may have unlinked
      // content since the caller looked.
      const absent = await absentReferences(tx, id, manifest.blobs, manifest.manifests);
      if (absent.length > 0) {
        throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references unknown content", {
          detail: { digests: absent },
        });
      }
      const at = this.now();
      const references = [...manifest.blobs, ...manifest.manifests];
      const kinds = [
        ...manifest.blobs.map(() => "blob"),
        ...manifest.manifests.map(() => "manifest"),
      ];
      // One statement (one round trip) for the four writes; the foreign keys are checked at
      // its end, when the rows the CTEs inserted are there. References are recorded only by
      // the push that stored the bytes (RETURNING is empty when they were there already).
      await tx`
        WITH stored AS (
          INSERT INTO manifests
            (digest, media_type, size, content, artifact_type, subject, annotations, created_at)
          VALUES (${manifest.digest}, ${manifest.mediaType}, ${manifest.size}, ${manifest.content},
            ${manifest.artifactType ?? null}, ${manifest.subject ?? null},
            ${manifest.annotations ? JSON.stringify(manifest.annotations) : null}, ${at})
          ON CONFLICT (digest) DO NOTHING
          RETURNING digest
        ), referenced AS (
          INSERT INTO manifest_references (manifest, reference, kind)
          SELECT stored.digest, r.reference, r.kind
          FROM stored, unnest(${references}::text[], ${kinds}::text[]) AS r(reference, kind)
          ON CONFLICT DO NOTHING
        ), held AS (
          INSERT INTO repository_manifests (repository_id, digest, pushed_at)
          VALUES (${id}, ${manifest.digest}, ${at})
          ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at
        )
        INSERT INTO tags (repository_id, name, digest, updated_at)
        SELECT ${id}, ${tag}::text, ${manifest.digest}, ${at}
        WHERE ${tag}::text IS NOT NULL
        ON CONFLICT (repository_id, name)
        DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`;
      if (!guarded) return;
      // One row, conditions on that row only: after waiting for a concurrent move or delete,
      // READ COMMITTED checks them again on what it committed, never on what this one read.
      const { ifTagAt } = guarded.condition;
      const moved = ifTagAt === null
        ? await tx`INSERT INTO tags (repository_id, name, digest, updated_at)
                   VALUES (${id}, ${guarded.tag}, ${manifest.digest}, ${at})
                   ON CONFLICT (repository_id, name) DO NOTHING`
        : await tx`UPDATE tags SET digest = ${manifest.digest}, updated_at = ${at}
                   WHERE repository_id = ${id} AND name = ${guarded.tag} AND digest = ${ifTagAt}`;
      if (moved.count === 0) throw new TagMovedError(); // rolls the manifest back too
    });
  }

  async getManifest(repository: string, digest: Digest): Promise<StoredManifest | null> {
    const [row] = await this.#query((sql) =>
      sql`SELECT m.media_type, m.size, m.content FROM manifests m
          JOIN repository_manifests rm ON rm.digest = m.digest
          JOIN repositories r ON r.id = rm.repository_id
          WHERE r.name = ${repository} AND m.digest = ${digest}`
    );
    if (!row) return null;
    return {
      digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      // A plain Uint8Array over its own buffer, not a Buffer view into a pooled one.
      content: new Uint8Array(row.content as Uint8Array),
    };
  }

  async getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | null> {
    const [row] = await this.#query((sql) =>
      sql`SELECT m.digest, m.media_type, m.size, m.content FROM tags t
          JOIN repositories r ON r.id = t.repository_id
          JOIN manifests m ON m.digest = t.digest
          WHERE r.name = ${repository} AND t.name = ${tag}`
    );
    if (!row) return null;
    return {
      digest: String(row.digest) as Digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      content: new Uint8Array(row.content as Uint8Array),
    };
  }

  async resolveTag(repository: string, tag: string): Promise<Digest | null> {
    const [row] = await this.#query((sql) =>
      sql`SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id
          WHERE r.name = ${repository} AND t.name = ${tag}`
    );
    return row ? String(row.digest) as Digest : null;
  }

  async listTags(
    repository: string,
    options: { last?: string; limit: number },
  ): Promise<Page<string>> {
    const rows = await this.#query((sql) =>
      sql`SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
          WHERE r.name = ${repository} AND t.name > ${options.last ?? ""}
          ORDER BY t.name LIMIT ${options.limit + 1}`
    );
    return page(rows.map((r) => String(r.name)), options.limit);
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const result = await this.#query((sql) =>
      sql`DELETE FROM tags
          WHERE repository_id = (SELECT id FROM repositories WHERE name = ${repository})
            AND name = ${tag}`
    );
    return result.count > 0;
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    // Tags on the manifest go with it (ON DELETE CASCADE from repository_manifests).
    const result = await this.#query((sql) =>
      sql`DELETE FROM repository_manifests
          WHERE repository_id = (SELECT id FROM repositories WHERE name = ${repository})
            AND digest = ${digest}`
    );
    return result.count > 0;
  }

  async parentManifests(repository: string, digest: Digest): Promise<Digest[]> {
    const rows = await this.#query((sql) =>
      sql`SELECT mr.manifest FROM manifest_references mr
          JOIN repository_manifests rm ON rm.digest = mr.manifest
          JOIN repositories r ON r.id = rm.repository_id
          WHERE r.name = ${repository} AND mr.reference = ${digest} AND mr.kind = 'manifest'
          ORDER BY mr.manifest`
    );
    return rows.map((row) => String(row.manifest) as Digest);
  }

  async referrers(repository: string, digest: Digest, artifactType?: string): Promise<Referrer[]> {
    const type = artifactType ?? null;
    const rows = await this.#query((sql) =>
      sql`SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
          JOIN repository_manifests rm ON rm.digest = m.digest
          JOIN repositories r ON r.id = rm.repository_id
          WHERE r.name = ${repository} AND m.subject = ${digest}
            AND (${type}::text IS NULL OR m.artifact_type = ${type}::text)
          ORDER BY m.created_at, m.digest`
    );
    return rows.map((row) => ({
      digest: String(row.digest) as Digest,
      mediaType: String(row.media_type),
      size: Number(row.size),
      ...(row.artifact_type !== null ? { artifactType: String(row.artifact_type) } : {}),
      ...(row.annotations !== null ? { annotations: JSON.parse(String(row.annotations)) } : {}),
    }));
  }

  async createUpload(id: string, repository: string): Promise<void> {
    await this.#transaction(async (tx) => {
      const repositoryId = await this.#ensureRepository(tx, repository);
      const at = this.now();
      await tx`INSERT INTO uploads (id, repository_id, started_at, updated_at)
               VALUES (${id}, ${repositoryId}, ${at}, ${at})`;
    });
  }

  async getUpload(id: string): Promise<UploadRecord | null> {
    const [row] = await this.#query((sql) =>
      sql`SELECT u.id, r.name, u.started_at FROM uploads u
          JOIN repositories r ON r.id = u.repository_id WHERE u.id = ${id}`
    );
    return row ? uploadRecord(row) : null;
  }

  async touchUpload(id: string): Promise<void> {
    await this.#query((sql) => sql`UPDATE uploads SET updated_at = ${this.now()} WHERE id = ${id}`);
  }

  async deleteUpload(id: string): Promise<void> {
    await this.#query((sql) => sql`DELETE FROM uploads WHERE id = ${id}`);
  }

  async allRepositories(): Promise<string[]> {
    const rows = await this.#query((sql) => sql`SELECT name FROM repositories ORDER BY name`);
    return rows.map((r) => String(r.name));
  }

  snapshot(repository: string): Promise<RepositorySnapshot> {
    // One REPEATABLE READ transaction, so the three lists agree with each other.
    return this.#transaction(async (tx) => {
      await tx`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`;
      const id = await this.#repositoryId(tx, repository);
      if (id === null) return { manifests: [], tags: [], links: [] };
      const references = new Map<string, { children: Digest[]; blobs: Digest[] }>();
      for (
        const row of await tx`SELECT mr.manifest, mr.reference, mr.kind FROM manifest_references mr
          JOIN repository_manifests rm ON rm.digest = mr.manifest WHERE rm.repository_id = ${id}`
      ) {
        const entry = references.get(String(row.manifest)) ?? { children: [], blobs: [] };
        (row.kind === "manifest" ? entry.children : entry.blobs).push(
          String(row.reference) as Digest,
        );
        references.set(String(row.manifest), entry);
      }
      const manifests = (await tx`SELECT rm.digest, rm.pushed_at, m.subject
          FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest
          WHERE rm.repository_id = ${id}`).map((row) => ({
        digest: String(row.digest) as Digest,
        pushedAt: Number(row.pushed_at),
        subject: row.subject === null ? null : String(row.subject) as Digest,
        ...(references.get(String(row.digest)) ?? { children: [], blobs: [] }),
      }));
      const tags = (await tx`SELECT name, digest, updated_at FROM tags
          WHERE repository_id = ${id}`).map((row) => ({
        name: String(row.name),
        digest: String(row.digest) as Digest,
        updatedAt: Number(row.updated_at),
      }));
      const links = (await tx`SELECT rb.digest, b.size, rb.linked_at FROM repository_blobs rb
          JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = ${id}`).map((row) => ({
        digest: String(row.digest) as Digest,
        size: Number(row.size),
        linkedAt: Number(row.linked_at),
      }));
      return { manifests, tags, links };
    });
  }

  async deleteTagIf(
    repository: string,
    tag: string,
    digest: Digest,
    before: number,
  ): Promise<boolean> {
    // One row, conditions on that row only: READ COMMITTED re-checks them after a wait.
    const result = await this.#query((sql) =>
      sql`DELETE FROM tags
          WHERE repository_id = (SELECT id FROM repositories WHERE name = ${repository})
            AND name = ${tag} AND digest = ${digest} AND updated_at < ${before}`
    );
    return result.count > 0;
  }

  deleteUntaggedManifest(repository: string, digest: Digest, before: number): Promise<boolean> {
    return this.#transaction(async (tx) => {
      // FOR UPDATE waits for pushes in flight; the DELETE's snapshot is then taken after them.
      const id = await this.#repositoryId(tx, repository, "FOR UPDATE");
      if (id === null) return false;
      const result = await tx`
        DELETE FROM repository_manifests AS rm
        WHERE rm.repository_id = ${id} AND rm.digest = ${digest} AND rm.pushed_at < ${before}
          AND NOT EXISTS (SELECT 1 FROM tags t
                          WHERE t.repository_id = rm.repository_id AND t.digest = rm.digest)
          AND NOT EXISTS (
            SELECT 1 FROM manifest_references mr
            JOIN repository_manifests parent ON parent.digest = mr.manifest
              AND parent.repository_id = rm.repository_id
            WHERE mr.reference = rm.digest AND mr.kind = 'manifest')`;
      return result.count > 0;
    });
  }

  unlinkUnusedBlob(repository: string, digest: Digest, before: number): Promise<boolean> {
    return this.#transaction(async (tx) => {
      const id = await this.#repositoryId(tx, repository, "FOR UPDATE");
      if (id === null) return false;
      const result = await tx`
        DELETE FROM repository_blobs AS rb
        WHERE rb.repository_id = ${id} AND rb.digest = ${digest} AND rb.linked_at < ${before}
          AND NOT EXISTS (
            SELECT 1 FROM manifest_references mr
            JOIN repository_manifests rm ON rm.digest = mr.manifest
              AND rm.repository_id = rb.repository_id
            WHERE mr.reference = rb.digest AND mr.kind = 'blob')`;
      return result.count > 0;
    });
  }

  deleteOrphanManifests(): Promise<number> {
    // A push re-using an orphan's bytes at this moment makes the foreign key refuse the
    // delete (23503); the transaction then runs again with a fresh snapshot.
    return this.#transaction(async (tx) => {
      const result = await tx`DELETE FROM manifests WHERE NOT EXISTS
        (SELECT 1 FROM repository_manifests rm WHERE rm.digest = manifests.digest)`;
      return result.count;
    });
  }

  async orphanBlobs(before: number): Promise<{ digest: Digest; size: number }[]> {
    const rows = await this.#query((sql) =>
      sql`SELECT digest, size FROM blobs b WHERE created_at < ${before}
            AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
            AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.reference = b.digest)`
    );
    return rows.map((row) => ({ digest: String(row.digest) as Digest, size: Number(row.size) }));
  }

  deleteBlobIfOrphan(digest: Digest): Promise<boolean> {
    return this.#transaction(async (tx) => {
      // FOR UPDATE waits for a linkBlob in flight (its foreign key check holds KEY SHARE).
      const [row] = await tx`SELECT 1 FROM blobs WHERE digest = ${digest} FOR UPDATE`;
      if (!row) return false;
      const result = await tx`DELETE FROM blobs WHERE digest = ${digest}
          AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blobs.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.reference = blobs.digest)`;
      return result.count > 0;
    });
  }

  async blobKnown(digest: Digest): Promise<boolean> {
    const rows = await this.#query((sql) => sql`SELECT 1 FROM blobs WHERE digest = ${digest}`);
    return rows.length > 0;
  }

  async idleUploads(before: number): Promise<UploadRecord[]> {
    const rows = await this.#query((sql) =>
      sql`SELECT u.id, r.name, u.started_at FROM uploads u
          JOIN repositories r ON r.id = u.repository_id WHERE u.updated_at < ${before}`
    );
    return rows.map(uploadRecord);
  }

  async repositorySize(repository: string): Promise<number> {
    const [row] = await this.#query((sql) =>
      sql`SELECT coalesce(sum(b.size), 0) AS total FROM repository_blobs rb
          JOIN blobs b ON b.digest = rb.digest
          WHERE rb.repository_id = (SELECT id FROM repositories WHERE name = ${repository})`
    );
    return Number(row?.total ?? 0);
  }

  /** Lets queries in flight finish (up to 5 s), then closes every connection. */
  close(): Promise<void> {
    clearInterval(this.#clockTimer);
    this.#closing ??= this.#sql.end({ timeout: 5 }).catch(() => {});
    return this.#closing;
  }
}

async function missing(
  sql: Sql | Tx,
  repositoryId: number | null,
  digests: Digest[],
  kind: "blobs" | "manifests",
): Promise<Digest[]> {
  if (digests.length === 0) return [];
  if (repositoryId === null) return [...digests];
  const table = kind === "blobs" ? "repository_blobs" : "repository_manifests";
  const rows = await sql.unsafe(
    `SELECT digest FROM ${table} WHERE repository_id = $1 AND digest = ANY($2::text[])`,
    [repositoryId, digests],
  );
  const present = new Set(rows.map((row) => String(row.digest)));
  return digests.filter((digest) => !present.has(digest));
}

/** Of a manifest's references, those the repository lacks, in one round trip. */
async function absentReferences(
  tx: Tx,
  repositoryId: number,
  blobs: Digest[],
  manifests: Digest[],
): Promise<Digest[]> {
  if (blobs.length === 0 && manifests.length === 0) return [];
  const rows = await tx`
    SELECT digest, 'blob' AS kind FROM repository_blobs
    WHERE repository_id = ${repositoryId} AND digest = ANY(${blobs}::text[])
    UNION ALL
    SELECT digest, 'manifest' AS kind FROM repository_manifests
    WHERE repository_id = ${repositoryId} AND digest = ANY(${manifests}::text[])`;
  const present = new Set(rows.map((row) => `${row.kind} ${row.digest}`));
  return [
    ...blobs.filter((digest) => !present.has(`blob ${digest}`)),
    ...manifests.filter((digest) => !present.has(`manifest ${digest}`)),
  ];
}

function uploadRecord(row: Row): UploadRecord {
  return { id: String(row.id), repository: String(row.name), startedAt: Number(row.started_at) };
}

function sqlState(err: unknown): string | undefined {
  return err instanceof postgres.PostgresError ? err.code : undefined;
}

/**
 * The error to throw for `err`: registry errors and plain SQL errors (bugs) as they are,
 * connection failures, timeouts and a server going away as UNAVAILABLE (503).
 */
/** Slack past the connect and statement timeouts before the client gives up on a query. */
const DEADLINE_MARGIN_MS = 2_000;

/**
 * Runs `fn` (queries on pool `sql`) for any of the shared tables: connection failures and
 * timeouts become 503, and a client-side deadline a little past the pool's connect timeout plus
 * its `statement_timeout` fails a query to a hung server or through a black-holed network instead of hanging the request
 * (the server-side timeout cannot fire then). After a server restart every idle pooled connection
 * is dead but still looks open: the next statement on each fails with 57P01/57P02 before it ran,
 * so it runs again (the failed connection is dropped), at most once per pooled connection.
 */
export async function guardPostgres<T>(sql: Sql, fn: () => Promise<T>): Promise<T> {
  // Waiting for a connection, then the statement: past both, no answer is coming.
  const deadlineMs = Number(sql.options.connect_timeout ?? 30) * 1000 +
    Number(sql.options.connection?.statement_timeout ?? 10_000) + DEADLINE_MARGIN_MS;
  for (let attempt = 0;; attempt++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const work = fn();
    // A query abandoned at the deadline still settles later: never as an unhandled rejection.
    work.catch(() => {});
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new RegistryError("UNAVAILABLE", `metadata database did not answer in ${deadlineMs} ms`, {
            status: 503,
            cause: new Error("client deadline: the server or the network is hung"),
          }),
        );
      }, deadlineMs);
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (err) {
      if (attempt < sql.options.max && TERMINATED.has(sqlState(err) ?? "")) continue;
      throw postgresUnavailable(err);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Maps a connection failure or timeout of `npm:postgres` to `RegistryError("UNAVAILABLE")`
 * (503); any other error is returned as it is.
 */
export function postgresUnavailable(err: unknown): unknown {
  if (err instanceof RegistryError) return err;
  const state = sqlState(err);
  if (state !== undefined) {
    // 23503 is retried (a racing GC) but, still failing after the retries, it is a bug.
    const transient = /^(08|53|57|58)/.test(state) || ["55P03", "40001", "40P01"].includes(state);
    if (!transient) return err;
    const reason = state === "57014" ? "did not answer in time" : `failed (${state})`;
    return new RegistryError("UNAVAILABLE", `metadata database ${reason}`, {
      status: 503,
      cause: err,
    });
  }
  // The driver's connection errors carry a string code (ECONNREFUSED, CONNECT_TIMEOUT,
  // CONNECTION_CLOSED, …); anything else is a bug and goes up as it is.
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") return err;
  const reason = code === "CONNECT_TIMEOUT"
    ? "did not accept a connection in time"
    : `is unreachable (${code})`;
  return new RegistryError("UNAVAILABLE", `metadata database ${reason}`, {
    status: 503,
    cause: err,
  });
}

function page<T>(rows: T[], limit: number): Page<T> {
  return { items: rows.slice(0, limit), more: rows.length > limit };
}
