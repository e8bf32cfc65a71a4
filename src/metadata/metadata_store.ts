/**
 * The narrow interface to the metadata database: repositories, blob links, manifests, tags,
 * referrers and upload sessions. SQLite is the embedded default; the methods are async so
 * that a networked database can implement the same interface.
 * @module
 */
import type { Digest } from "../oci/digest.ts";

/** A manifest as stored: its exact bytes and what was indexed from them. */
export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  size: number;
  content: Uint8Array<ArrayBuffer>;
}

/** A manifest to store, with its indexed fields. */
export interface NewManifest extends StoredManifest {
  artifactType?: string;
  subject?: Digest;
  annotations?: Record<string, string>;
  /** Config and layers. */
  blobs: Digest[];
  /** Child manifests of an index. */
  manifests: Digest[];
}

/** One entry of a referrers list. */
export interface Referrer {
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** One page of a sorted listing, and whether more follow. */
export interface Page<T> {
  items: T[];
  more: boolean;
}

/** An upload session's record. */
export interface UploadRecord {
  id: string;
  repository: string;
  startedAt: number;
}

/** What garbage collection sees of one repository. */
export interface RepositorySnapshot {
  manifests: {
    digest: Digest;
    pushedAt: number;
    subject: Digest | null;
    /** Child manifests (of an index). */
    children: Digest[];
    /** Config and layers. */
    blobs: Digest[];
  }[];
  tags: { name: string; digest: Digest; updatedAt: number }[];
  links: { digest: Digest; size: number; linkedAt: number }[];
}

/** A condition on the tag write of {@link MetadataStore.putManifest}: a compare-and-set. */
export interface TagCondition {
  /**
   * Write only while the tag points at this digest (null: only while the tag is absent), so that
   * a writer acting on what it read earlier (pull-through) never overwrites a push since.
   */
  ifTagAt: Digest | null;
}

/** Metadata persistence. Every method is one atomic step. */
export interface MetadataStore {
  /** The driver's name as the configuration spells it (`sqlite`, `postgres`), for `/readyz`. */
  readonly driver: string;
  /** Resolves when the database answers a trivial query (`SELECT 1`); rejects otherwise. */
  ping(): Promise<void>;

  /** True when the repository has ever been written to. */
  repositoryExists(name: string): Promise<boolean>;
  /** Repository names holding at least one manifest, sorted, after `last`. */
  listRepositories(options: { last?: string; limit: number }): Promise<Page<string>>;

  /** Records a stored blob and links it to `repository`. */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** Size of a blob linked to `repository`, or null. */
  linkedBlobSize(repository: string, digest: Digest): Promise<number | null>;
  /** Repositories a blob is linked to (for cross-repository mounts without `from`). */
  repositoriesWithBlob(digest: Digest): Promise<string[]>;
  /** Unlinks a blob from a repository; false when it was not linked. */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;

  /** Of `digests`, those not linked to `repository` as blobs. */
  missingBlobs(repository: string, digests: Digest[]): Promise<Digest[]>;
  /** Of `digests`, those not in `repository` as manifests. */
  missingManifests(repository: string, digests: Digest[]): Promise<Digest[]>;

  /**
   * Stores a manifest in a repository and, if given, points `tag` at it: all or nothing. With a
   * `condition` on the tag that no longer holds, writes nothing and answers false; else true.
   */
  putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
    condition?: TagCondition,
  ): Promise<boolean>;
  /** A manifest in `repository` by digest, or null. */
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | null>;
  /** The digest a tag points to, or null. */
  resolveTag(repository: string, tag: string): Promise<Digest | null>;
  /** The manifest a tag points to, or null: one lookup for the most frequent read of a pull. */
  getTaggedManifest(repository: string, tag: string): Promise<StoredManifest | null>;
  /** Tags of a repository, sorted, after `last`. */
  listTags(repository: string, options: { last?: string; limit: number }): Promise<Page<string>>;
  /** Removes a tag; false when absent. */
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /** Removes a manifest and every tag on it from a repository; false when absent. */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>;
  /** Manifests in `repository` that list `digest` as a child manifest (indexes). */
  parentManifests(repository: string, digest: Digest): Promise<Digest[]>;
  /** Manifests in `repository` whose subject is `digest`, optionally of one artifact type. */
  referrers(repository: string, digest: Digest, artifactType?: string): Promise<Referrer[]>;

  /** Records a new upload session for a repository (creating the repository). */
  createUpload(id: string, repository: string): Promise<void>;
  /** An upload session, or null. */
  getUpload(id: string): Promise<UploadRecord | null>;
  /** Marks activity on a session (for expiry). */
  touchUpload(id: string): Promise<void>;
  /** Forgets an upload session. */
  deleteUpload(id: string): Promise<void>;

  /** Every repository name, including those without manifests. */
  allRepositories(): Promise<string[]>;
  /** Manifests, tags and blob links of a repository, for garbage collection. */
  snapshot(repository: string): Promise<RepositorySnapshot>;
  /** Removes a tag if it still points to `digest` and was last moved before `before`. */
  deleteTagIf(repository: string, tag: string, digest: Digest, before: number): Promise<boolean>;
  /**
   * Removes a manifest from a repository if it still has no tag and was pushed before
   * `before`, and no index in the repository lists it.
   */
  deleteUntaggedManifest(repository: string, digest: Digest, before: number): Promise<boolean>;
  /** Unlinks a blob if linked before `before` and no manifest of the repository uses it. */
  unlinkUnusedBlob(repository: string, digest: Digest, before: number): Promise<boolean>;
  /** Deletes manifest contents that no repository holds any more; returns how many. */
  deleteOrphanManifests(): Promise<number>;
  /** Blobs no repository links and no manifest references, recorded before `before`. */
  orphanBlobs(before: number): Promise<{ digest: Digest; size: number }[]>;
  /** Forgets a blob if it is still unlinked and unreferenced; true when it did. */
  deleteBlobIfOrphan(digest: Digest): Promise<boolean>;
  /** True when the metadata knows a blob (linked or not). */
  blobKnown(digest: Digest): Promise<boolean>;
  /** Upload sessions idle since before `before`. */
  idleUploads(before: number): Promise<UploadRecord[]>;
  /** Total size of the blobs linked to a repository. */
  repositorySize(repository: string): Promise<number>;

  /**
   * Milliseconds since the epoch on the clock the stored timestamps use: the database's for a
   * shared database, so that every process's writes and GC's grace period agree.
   */
  now(): number;

  /** Closes the database once queries in flight are done. */
  close(): Promise<void>;
}
