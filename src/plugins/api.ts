/**
 * The plugin API: everything a plugin may use. Built-in plugins (`plugins/<name>/`) are written
 * against this module alone (plus the pure values of `src/oci`), exactly as third-party plugins
 * are. See `docs/PLUGINS.md` for a guide and a complete example.
 * @module
 */
import type { Hono } from "hono";
import type { Digest } from "../oci/digest.ts";
import type { Descriptor, ParsedManifest } from "../oci/manifest.ts";
import type { Reference } from "../oci/names.ts";
import { type ErrorCode, RegistryError } from "../oci/errors.ts";
import type { Caller, DeleteEvent, ManifestEvent, PullEvent } from "../registry/hooks.ts";

export { RegistryError };
export type {
  Caller,
  DeleteEvent,
  Descriptor,
  Digest,
  ErrorCode,
  ManifestEvent,
  ParsedManifest,
  PullEvent,
  Reference,
};

/**
 * Signature checks shared with `wharf verify` (one implementation): cosign simple-signing
 * payloads, DSSE envelopes, and public keys in PEM.
 */
export { parsePublicKey } from "../cosign/keys.ts";
export { verifySimpleSigning } from "../cosign/verify.ts";
export { verifyEnvelope } from "../cosign/dsse.ts";
/** Repository globs as everywhere in the config (`*` in a segment, `**` across segments). */
export { repositoryMatcher } from "../config/globs.ts";

/**
 * The plugin API version this registry implements; a plugin declares the one it was written for.
 * Version 2 made `ctx.db` and `ctx.artifacts` asynchronous (version 1 was synchronous SQLite).
 */
export const API_VERSION = 2;

/** A plugin module's default export. */
export interface Plugin {
  /** Unique name: lowercase letters, digits and `-`; also the config section and table prefix. */
  name: string;
  /** The API version the plugin was written against ({@link API_VERSION}). */
  apiVersion: number;
  /** One line shown by `wharf plugins list`. */
  description?: string;
  /** Called once at start; registers hooks, routes and tables through `ctx`. */
  setup(ctx: PluginContext): void | Promise<void>;
}

/** A subject being mirrored from an upstream. */
export interface SyncSubjectEvent {
  /** Mirror name from the config. */
  mirror: string;
  upstreamRepository: string;
  repository: string;
  digest: Digest;
  mediaType: string;
}

/** Extra content to mirror with a subject: tags in the same repository, or referrers. */
export type AttachmentRequest =
  | { kind: "tag"; tag: string }
  | { kind: "referrers"; artifactType?: string };

/** A finished mirror run. */
export interface SyncCompletedEvent {
  mirror: string;
  outcome: "success" | "partial" | "failed";
  images: number;
  bytes: number;
  errors: string[];
}

/** Handlers per hook. A hook may have several handlers from several plugins. */
export interface Hooks {
  /** Before a manifest is stored; throw a {@link RegistryError} to reject the push. */
  "manifest.beforePush": (event: ManifestEvent) => void | Promise<void>;
  /** After a manifest was stored (and tagged). Errors are logged, never undo the push. */
  "manifest.pushed": (event: ManifestEvent) => void | Promise<void>;
  /** Before a manifest is served; throw a {@link RegistryError} (e.g. `DENIED`) to refuse. */
  "manifest.beforePull": (event: PullEvent) => void | Promise<void>;
  /** After a manifest was removed from a repository. */
  "manifest.deleted": (event: DeleteEvent) => void | Promise<void>;
  /** Which tags or referrers to mirror along with a subject. */
  "sync.attachments": (
    event: SyncSubjectEvent,
  ) => AttachmentRequest[] | Promise<AttachmentRequest[]>;
  /** After a mirror run. */
  "sync.completed": (event: SyncCompletedEvent) => void | Promise<void>;
}

/** A hook's name. */
export type HookName = keyof Hooks;

/** Structured logging for a plugin (lines carry the plugin's name). */
export interface PluginLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A value a plugin stores or reads back: the same types in SQLite and PostgreSQL. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** A row of a query, by column name. */
export type SqlRow = Record<string, SqlValue>;

/** The database behind the plugin tables; branch on it only for SQL that must differ. */
export type SqlDialect = "sqlite" | "postgres";

/**
 * One schema migration: SQL that both databases accept, or one text per dialect (e.g. SQLite's
 * `STRICT` tables and `INTEGER`, PostgreSQL's `bigint` and `bytea`).
 */
export type Migration = string | { sqlite: string; postgres: string };

/**
 * Queries on the plugin's tables. SQL uses `?` placeholders in both dialects (PostgreSQL gets
 * them as `$1, $2, …`; a `?` inside a string literal, quoted name or comment stays as it is).
 * Integers come back as numbers (bigint beyond 2^53), blobs as `Uint8Array`, booleans as 0/1.
 */
export interface PluginQueries {
  /** Which database runs the SQL. */
  readonly dialect: SqlDialect;
  /** The full name of the plugin's table `name`: `p_<plugin>_<name>` (use it in all SQL). */
  table(name: string): string;
  /** Rows of a query. */
  all(sql: string, ...params: SqlValue[]): Promise<SqlRow[]>;
  /** First row of a query, or undefined. */
  get(sql: string, ...params: SqlValue[]): Promise<SqlRow | undefined>;
  /** Runs a statement; returns the number of changed rows. */
  run(sql: string, ...params: SqlValue[]): Promise<number>;
}

/** What a plugin declares about one of its tables (see {@link PluginDatabase.table}). */
export interface TableOptions {
  /**
   * The table holds primary data that exists nowhere else (what clients sent through the
   * plugin's own routes, say), not data rebuilt from pushes. `wharf migrate` copies its rows to
   * the target registry after the manifests, skipping rows whose primary key (or another unique
   * constraint) the target already holds: give it a natural key, not a generated id. A column
   * named `repository` limits the copy to the migrated repositories. The plugin's records in
   * the artifact index are carried with it.
   */
  carry?: boolean;
}

/**
 * A plugin's own tables in the registry's database: `<data>/plugins.db` (SQLite) on a single
 * node, the metadata database when `metadata.driver` is `postgres`, so that every process of a
 * scaled-out registry reads what another wrote.
 *
 * @example
 * ```ts
 * const notes = ctx.db.table("notes");
 * await ctx.db.migrate([`CREATE TABLE ${notes} (digest TEXT PRIMARY KEY, note TEXT NOT NULL)`]);
 * await ctx.db.run(`INSERT INTO ${notes} VALUES (?, ?) ON CONFLICT DO NOTHING`, digest, "hi");
 * const row = await ctx.db.get(`SELECT note FROM ${notes} WHERE digest = ?`, digest);
 * ```
 */
export interface PluginDatabase extends PluginQueries {
  /**
   * The full name of the plugin's table `name` (as {@link PluginQueries.table}); with
   * `{ carry: true }` it also declares that the table holds data found nowhere else.
   */
  table(name: string, options?: TableOptions): string;
  /**
   * Applies the plugin's schema migrations in order, each once (tracked per plugin, also when
   * several processes start together). A migration may touch only the plugin's own tables;
   * never edit one that has shipped, append a new one.
   */
  migrate(migrations: Migration[]): Promise<void>;
  /**
   * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. Inside,
   * query through `tx` only (`ctx.db` itself refuses, since it could not see or wait for the
   * open transaction).
   */
  transaction<T>(fn: (tx: PluginQueries) => Promise<T>): Promise<T>;
}

/** Read access to stored content. */
export interface ContentReader {
  /** A blob's bytes, if linked to the repository and at most `maxBytes` (default 4 MiB). */
  readBlob(repository: string, digest: Digest, maxBytes?: number): Promise<Uint8Array>;
  /** A manifest by tag or digest in a repository, or null. */
  getManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: Digest; mediaType: string; content: Uint8Array } | null>;
  /** The tags of a repository. */
  listTags(repository: string): Promise<string[]>;
  /** Indexes in the repository that list `digest` as a child manifest. */
  parents(repository: string, digest: Digest): Promise<Digest[]>;
}

/** Verification state of an attached artifact. */
export type VerificationStatus = "verified" | "unverified" | "invalid" | "not-checked";

/** An artifact attached to a subject, as shown by `GET /wharf/v1/<name>/artifacts/<digest>`. */
export interface ArtifactRecord {
  repository: string;
  /** The manifest the artifact is about. */
  subject: Digest;
  /** The artifact's own manifest. */
  digest: Digest;
  /** What kind: `signature`, `attestation`, `sbom`, … */
  kind: string;
  /** Media or predicate type, for display and filtering. */
  type: string;
  status: VerificationStatus;
  /** Free-form detail: key that verified, predicate type, package count, reason of failure. */
  detail?: Record<string, unknown>;
}

/** A record of the artifact index with the plugin that wrote it. */
export type IndexedArtifact = ArtifactRecord & { plugin: string };

/** The shared index of attached artifacts that every artifact plugin writes to. */
export interface ArtifactIndex {
  /** Adds or replaces the record of (`digest`, `kind`, `type`, plugin) for a subject. */
  record(record: ArtifactRecord): Promise<void>;
  /** Records of a subject in a repository (all plugins). */
  list(repository: string, subject: Digest): Promise<IndexedArtifact[]>;
  /** Records (all plugins) whose artifact manifest is `digest`: empty when it is no artifact. */
  ofArtifact(repository: string, digest: Digest): Promise<IndexedArtifact[]>;
  /** Removes this plugin's records of an artifact manifest. */
  remove(repository: string, digest: Digest): Promise<void>;
}

/** What a plugin gets at setup. */
export interface PluginContext {
  /** The plugin's name. */
  name: string;
  /** The plugin's section of the config file (`plugins.<name>`), or `{}`. */
  config: Record<string, unknown>;
  log: PluginLogger;
  db: PluginDatabase;
  content: ContentReader;
  artifacts: ArtifactIndex;
  /** Registers a hook handler. */
  on<K extends HookName>(hook: K, handler: Hooks[K]): void;
  /**
   * Routes under `/wharf/v1/plugins/<name>/`. Requests reach them after authentication; use
   * `ctx.access(c)` to check repository rights.
   */
  routes(register: (app: Hono) => void): void;
  /**
   * Adds headers to every answer of the `/v2/` ping (also the 401 challenge), where clients
   * discover capabilities, e.g. `X-Registry-Supports-Signatures: 1`.
   */
  advertise(headers: Record<string, string>): void;
  /** Serves routes at an absolute prefix (e.g. `/extensions/v2/`), for protocol extensions. */
  mount(prefix: string, register: (app: Hono) => void): void;
  /**
   * An OCI error to throw from a hook or route (e.g. `ctx.error("DENIED", "…")`), so that a
   * plugin needs only type imports from this module.
   */
  error(code: ErrorCode, message: string, detail?: unknown): RegistryError;
  /** Checks that the request behind a Hono context may perform `action` on `repository`. */
  authorize(c: unknown, repository: string, action: "pull" | "push" | "delete"): void;
}
