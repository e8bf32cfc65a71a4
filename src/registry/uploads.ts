/**
 * Blob upload sessions of a repository: start, append, complete, cancel, and cross-repository
 * mounts. Bytes go to the blob store; a blob is linked to the repository only once its digest
 * checked out.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { BlobInfo, BlobStore, UploadState } from "../storage/blob_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import type { Access } from "./access.ts";

/** Options of {@link Uploads}. */
export interface UploadsOptions {
  /** Mount a blob found in another readable repository when `from` is not given. */
  automaticMount: boolean;
}

/** A session, as answered to clients. */
export interface UploadSession extends UploadState {
  id: string;
}

/** Upload sessions scoped to repositories. */
export class Uploads {
  constructor(
    private readonly store: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly options: UploadsOptions,
  ) {}

  /** Opens a new, empty session. */
  async start(repository: string): Promise<UploadSession> {
    const id = crypto.randomUUID();
    await this.store.startUpload(id);
    await this.metadata.createUpload(id, repository);
    return { id, size: 0 };
  }

  /** State of a session of `repository`. */
  async status(repository: string, id: string): Promise<UploadSession> {
    await this.#session(repository, id);
    return { id, ...await this.store.uploadState(id) };
  }

  /** Appends one chunk (or a whole streamed body) to a session. */
  async append(
    repository: string,
    id: string,
    body: ReadableStream<Uint8Array>,
    options: { offset?: number; expectedLength?: number } = {},
  ): Promise<UploadSession> {
    await this.#session(repository, id);
    const state = await this.store.appendUpload(id, body, options);
    await this.metadata.touchUpload(id);
    return { id, ...state };
  }

  /**
   * Finishes a session with an optional last chunk, verifies `digest` and links the blob to
   * the repository. On a digest mismatch the session is discarded.
   */
  async complete(
    repository: string,
    id: string,
    digest: Digest,
    last?: { body: ReadableStream<Uint8Array>; offset?: number; expectedLength?: number },
  ): Promise<BlobInfo> {
    await this.#session(repository, id);
    if (last) await this.store.appendUpload(id, last.body, last);
    let blob: BlobInfo;
    try {
      blob = await this.store.commitUpload(id, digest);
    } catch (err) {
      if (err instanceof RegistryError && err.code === "DIGEST_INVALID") {
        await this.cancel(repository, id);
      }
      throw err;
    }
    await this.metadata.linkBlob(repository, blob.digest, blob.size);
    await this.metadata.deleteUpload(id);
    return blob;
  }

  /** Uploads a whole blob in one step (single POST with `digest`). */
  async putWhole(
    repository: string,
    digest: Digest,
    body: ReadableStream<Uint8Array>,
    expectedLength?: number,
  ): Promise<BlobInfo> {
    const { id } = await this.start(repository);
    try {
      return await this.complete(repository, id, digest, { body, expectedLength });
    } catch (err) {
      await this.cancel(repository, id);
      throw err;
    }
  }

  /** Discards a session. */
  async cancel(repository: string, id: string): Promise<void> {
    const record = await this.metadata.getUpload(id);
    if (record && record.repository !== repository) throw uploadUnknown(id);
    await this.store.cancelUpload(id);
    await this.metadata.deleteUpload(id);
  }

  /**
   * Links an existing blob into `repository` without uploading it: from `from` when given,
   * else (with automatic mounts) from any repository holding it. Only repositories the caller
   * may pull from are considered. Returns null when nothing could be mounted.
   */
  async mount(
    repository: string,
    digest: Digest,
    from: string | undefined,
    access: Access,
  ): Promise<BlobInfo | null> {
    const candidates = from !== undefined
      ? [from]
      : this.options.automaticMount
      ? await this.metadata.repositoriesWithBlob(digest)
      : [];
    for (const source of candidates) {
      if (source === repository || !access.can(source, "pull")) continue;
      const size = await this.metadata.linkedBlobSize(source, digest);
      if (size === null || !await this.store.stat(digest)) continue;
      await this.metadata.linkBlob(repository, digest, size);
      return { digest, size };
    }
    // Already here: mounting onto itself is a no-op that succeeds.
    const size = await this.metadata.linkedBlobSize(repository, digest);
    return size === null ? null : { digest, size };
  }

  async #session(repository: string, id: string): Promise<void> {
    const record = await this.metadata.getUpload(id);
    if (!record || record.repository !== repository) throw uploadUnknown(id);
  }
}

function uploadUnknown(id: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {
    detail: { id },
  });
}
