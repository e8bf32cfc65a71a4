/**
 * What the registry asks when content is missing locally in a repository that mirrors an
 * upstream on demand. The mirroring layer implements it; the registry only calls it.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { Reference } from "../oci/names.ts";
import type { StoredManifest } from "../metadata/metadata_store.ts";
import type { ByteRange } from "../storage/blob_store.ts";

/** An upstream that can fill local misses. Every method answers null when it cannot. */
export interface PullThroughSource {
  /** The manifest from the upstream (verified); it is stored with its attachments meanwhile. */
  manifest(repository: string, reference: Reference): Promise<StoredManifest | null>;
  /**
   * The manifest to serve for a tag found locally as `local`: `local` itself, or the upstream's
   * newer one when the tag came from the upstream and is due for a check (time-to-live).
   */
  refreshTag(repository: string, tag: string, local: StoredManifest): Promise<StoredManifest>;
  /** The size of a blob the upstream has. */
  blobSize(repository: string, digest: Digest): Promise<number | null>;
  /**
   * The blob (or the `range` of it) streamed from the upstream while the whole blob is stored;
   * null also when another request was already fetching it (it is local now).
   */
  openBlob(
    repository: string,
    digest: Digest,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array> | null>;
}

/** The registry's slot for a pull-through source (set once the mirrors are configured). */
export interface PullThroughSlot {
  source?: PullThroughSource;
}
