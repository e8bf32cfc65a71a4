/**
 * The narrow interface between the registry and wherever blob bytes live. The filesystem
 * store is the embedded default; object storage is a second implementation of the same shape.
 * Stores know digests and bytes, never repositories, HTTP or plugins.
 * @module
 */
import type { Digest } from "../oci/digest.ts";

/** A stored blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** An inclusive byte range within a blob. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Where an upload session stands. */
export interface UploadState {
  /** Bytes received so far. */
  size: number;
  /** Last write, in ms since the epoch (when the store knows it). */
  modifiedAt?: number;
}

/** Options of {@link BlobStore.appendUpload}. */
export interface AppendOptions {
  /** Where the chunk must start (`RANGE_INVALID` otherwise). */
  offset?: number;
  /** How many bytes the chunk must have (`SIZE_INVALID` otherwise). */
  expectedLength?: number;
  /** Largest size the whole session may reach; the append fails once it would pass it. */
  limit?: number;
  /** No append follows: the session is committed or discarded next (see `digest`). */
  final?: boolean;
  /**
   * With `final`: the digest the commit will name. A store may then write the content straight
   * to that blob's place, where it stays invisible until the commit has verified it (the S3
   * store completes its multipart upload there instead of copying from a staging key).
   */
  digest?: Digest;
}

/** Options of {@link BlobStore.redirectUrl}. */
export interface RedirectOptions {
  /** How long the URL stays valid, in seconds (default: the store's configured expiry). */
  expiresInSeconds?: number;
}

/** Content-addressed blob storage with resumable upload sessions. */
export interface BlobStore {
  /** The driver's name as the configuration spells it (`filesystem`, `s3`), for `/readyz`. */
  readonly driver: string;
  /**
   * Resolves when the store answers right now (one cheap request, no data moved); rejects with
   * the reason otherwise. `signal` abandons the attempt (readiness probes have a deadline).
   */
  ping(signal?: AbortSignal): Promise<void>;
  /**
   * Where a client may download a stored blob straight from the backend (a presigned, expiring
   * URL), or null when this store serves its bytes itself or redirects are switched off. Only
   * for blobs known to be stored: the URL is made without checking.
   */
  redirectUrl?(digest: Digest, options?: RedirectOptions): Promise<string | null>;
  /** Size of a stored blob, or null when absent. Never reads the content. */
  stat(digest: Digest): Promise<BlobInfo | null>;
  /** Streams a stored blob, or one range of it; throws `BLOB_UNKNOWN` when absent. */
  read(digest: Digest, range?: ByteRange): Promise<ReadableStream<Uint8Array>>;
  /** Removes a stored blob; absent blobs are ignored. */
  delete(digest: Digest): Promise<void>;
  /** Every stored blob, with when it was written (for garbage collection and scrub). */
  listBlobs(): AsyncIterable<BlobInfo & { modifiedAt: number }>;
  /** Re-reads a stored blob and returns the digest of what is actually there. */
  rehash(digest: Digest): Promise<Digest>;
  /** Moves a corrupt blob out of the way (kept for inspection, no longer served). */
  quarantine(digest: Digest): Promise<void>;

  /** Opens an empty upload session under a caller-chosen id. */
  startUpload(id: string): Promise<void>;
  /** Current state of a session; throws `BLOB_UPLOAD_UNKNOWN` when there is none. */
  uploadState(id: string): Promise<UploadState>;
  /**
   * Appends a stream to a session, hashing while writing. `offset`, when given, must equal the
   * bytes received so far (else `RANGE_INVALID`). All or nothing: when the stream fails the
   * session is left as it was. Appends to one session are serialised.
   */
  appendUpload(
    id: string,
    body: ReadableStream<Uint8Array>,
    options?: AppendOptions,
  ): Promise<UploadState>;
  /**
   * Verifies the session's content against `digest` and makes it visible as that blob
   * (`DIGEST_INVALID` otherwise; the session is then kept for another try). Idempotent for
   * content that is already stored.
   */
  commitUpload(id: string, digest: Digest): Promise<BlobInfo>;
  /** Discards a session and its data; absent sessions are ignored. */
  cancelUpload(id: string): Promise<void>;
  /** Ids of the sessions on disk (for expiry and crash recovery). */
  listUploads(): Promise<string[]>;
}
