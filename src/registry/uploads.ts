/**
 * Blob upload sessions of a repository: start, append, complete, cancel, and cross-repository
 * mounts. Bytes go to the blob store; a blob is linked to the repository only once its digest
 * checked out.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { AppendOptions, BlobInfo, BlobStore, UploadState } from "../storage/blob_store.ts";
import type { Locks } from "../concurrency/keyed_lock.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import type { Access } from "./access.ts";

/** Size limits of one repository. */
export interface UploadLimits {
  /** Largest single blob, in bytes. */
  maxUploadSize?: number;
  /** Total bytes of blobs linked to the repository. */
  quota?: number;
}

/** Options of {@link Uploads}. */
export interface UploadsOptions {
  /** Mount a blob found in another readable repository when `from` is not given. */
  automaticMount: boolean;
  /** The limits that apply to a repository. */
  limits: (repository: string) => UploadLimits;
  /** Held per blob digest while linking, shared with garbage collection. */
  blobLocks: Locks;
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

  /**
   * Appends one chunk (or a whole streamed body) to a session, refusing it as soon as it would
   * pass the repository's upload size limit or quota.
   */
  async append(
    repository: string,
    id: string,
    body: ReadableStream<Uint8Array>,
    options: Pick<AppendOptions, "offset" | "expectedLength" | "final" | "digest"> = {},
  ): Promise<UploadSession> {
    await this.#session(repository, id);
    const limit = await this.#room(repository);
    if (options.expectedLength !== undefined && limit !== undefined) {
      const { size } = await this.store.uploadState(id);
      if (size + options.expectedLength > limit) {
        await body.cancel().catch(() => {});
        throw await this.#overLimit(repository);
      }
    }
    let state: UploadState;
    try {
      state = await this.store.appendUpload(id, body, { ...options, limit });
    } catch (err) {
      if (err instanceof RegistryError && err.code === "SIZE_INVALID" && err.status === 413) {
        throw await this.#overLimit(repository);
      }
      throw err;
    }
    await this.metadata.touchUpload(id);
    return { id, size: state.size };
  }

  /** Bytes a session of `repository` may reach, or undefined without limits. */
  async #room(repository: string): Promise<number | undefined> {
    const { maxUploadSize, quota } = this.options.limits(repository);
    const left = quota === undefined
      ? undefined
      : Math.max(quota - await this.metadata.repositorySize(repository), 0);
    if (maxUploadSize === undefined) return left;
    return left === undefined ? maxUploadSize : Math.min(maxUploadSize, left);
  }

  async #overLimit(repository: string): Promise<RegistryError> {
    const { maxUploadSize, quota } = this.options.limits(repository);
    if (quota !== undefined) {
      const used = await this.metadata.repositorySize(repository);
      if (maxUploadSize === undefined || quota - used < maxUploadSize) {
        return new RegistryError(
          "DENIED",
          `repository ${repository} would exceed its storage quota of ${quota} bytes (${used} used)`,
          { detail: { quota, used } },
        );
      }
    }
    return new RegistryError(
      "SIZE_INVALID",
      `blob exceeds the maximum upload size of ${maxUploadSize} bytes for ${repository}`,
      { status: 413, detail: { maxUploadSize } },
    );
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
    if (last) {
      await this.append(repository, id, last.body, {
        offset: last.offset,
        expectedLength: last.expectedLength,
        final: true,
        digest,
      });
    }
    return await this.options.blobLocks.run(digest, async () => {
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
    });
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
      const mounted = await this.options.blobLocks.run(digest, async () => {
        const size = await this.metadata.linkedBlobSize(source, digest);
        if (size === null || !await this.store.stat(digest)) return null;
        await this.metadata.linkBlob(repository, digest, size);
        return { digest, size };
      });
      if (mounted) return mounted;
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
