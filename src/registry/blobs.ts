/**
 * Blob reads and deletes within a repository: a blob is visible in a repository only when it
 * is linked there.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { BlobStore, ByteRange } from "../storage/blob_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import type { PullThroughSlot } from "./pull_through.ts";

/** Blob access scoped to repositories. */
export class Blobs {
  constructor(
    private readonly store: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly pullThrough: PullThroughSlot = {},
  ) {}

  /** Size of a blob linked to `repository`; throws `BLOB_UNKNOWN` otherwise. */
  async size(repository: string, digest: Digest): Promise<number> {
    const size = await this.metadata.linkedBlobSize(repository, digest);
    if (size === null) throw blobUnknown(digest);
    return size;
  }

  /**
   * Size of a blob for a pull: linked here (`local`), or offered by the repository's
   * pull-through upstream; throws `BLOB_UNKNOWN` otherwise.
   */
  async locate(repository: string, digest: Digest): Promise<{ size: number; local: boolean }> {
    const size = await this.metadata.linkedBlobSize(repository, digest);
    if (size !== null) return { size, local: true };
    const remote = await this.pullThrough.source?.blobSize(repository, digest);
    if (remote !== undefined && remote !== null) return { size: remote, local: false };
    throw blobUnknown(digest);
  }

  /**
   * A URL the client may download a blob from directly (a presigned object-storage URL), or
   * null to stream it. Only for a blob {@link locate} found linked here (`local`): a
   * pull-through miss has no stored bytes to point at until it has been stored.
   */
  async redirectUrl(digest: Digest): Promise<string | null> {
    return await this.store.redirectUrl?.(digest) ?? null;
  }

  /**
   * Streams a linked blob or one range of it; a blob only the pull-through upstream has is
   * streamed from there (the range of it) while the whole blob is stored.
   */
  async read(
    repository: string,
    digest: Digest,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    if (await this.metadata.linkedBlobSize(repository, digest) === null) {
      const stream = await this.pullThrough.source?.openBlob(repository, digest, range);
      if (stream) return stream;
      await this.size(repository, digest); // fetched meanwhile by another request, or unknown
    }
    return await this.store.read(digest, range);
  }

  /**
   * Unlinks a blob from a repository. The bytes stay while other repositories link them;
   * garbage collection removes unlinked bytes.
   */
  async delete(repository: string, digest: Digest): Promise<void> {
    if (!await this.metadata.unlinkBlob(repository, digest)) throw blobUnknown(digest);
  }
}

function blobUnknown(digest: Digest): RegistryError {
  return new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
}
