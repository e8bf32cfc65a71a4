/**
 * Streams one blob from a source blob store into a target registry's upload path, in chunks,
 * under an upload session whose id is derived from the digest: a run that was killed leaves
 * that session behind, and the next run appends from where it ended instead of starting over.
 * The target hashes every byte and makes the blob visible only when the digest checks out.
 * @module
 */
import { type Digest, parseDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Registry } from "../registry/registry.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** Options of {@link copyBlob}. */
export interface BlobCopyOptions {
  /** Bytes per append; an interrupted copy resumes from its last whole chunk. */
  chunkSize: number;
  /** Called after each chunk with the bytes in the session so far. */
  onChunk?: (done: number, total: number) => void;
  /** Called before sending when a session left by an earlier run is continued at `offset`. */
  onResume?: (offset: number) => void;
}

/** What a copy did. */
export interface BlobCopyResult {
  /** Bytes this call sent (less than the size when it resumed a session). */
  bytesSent: number;
  /** Where a session left by an earlier run was resumed, or null for a fresh copy. */
  resumedAt: number | null;
}

/**
 * The upload session id a migration uses for a digest (at most 64 characters, the stores'
 * limit), so that a later run finds the session an interrupted one left.
 */
export function migrationUploadId(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `migrate-${algorithm}-${hex}`.slice(0, 64);
}

/**
 * Copies `digest` (`size` bytes in the source) into `repository` of the target and links it
 * there. Throws the target's `DIGEST_INVALID` when the source bytes do not match the digest
 * (nothing becomes visible, the session is discarded); other failures leave the session for the
 * next run to resume.
 */
export async function copyBlob(
  source: BlobStore,
  target: Registry,
  repository: string,
  digest: Digest,
  size: number,
  options: BlobCopyOptions,
): Promise<BlobCopyResult> {
  const id = migrationUploadId(digest);
  const resumedAt = await openSession(target, repository, id, size);
  if (resumedAt > 0) options.onResume?.(resumedAt);
  try {
    return {
      bytesSent: await send(source, target, repository, id, digest, size, resumedAt, options),
      resumedAt: resumedAt || null,
    };
  } catch (err) {
    if (!(resumedAt > 0 && isDigestInvalid(err))) throw err;
    // The resumed part did not add up (a session touched by something else): once from zero.
    await openSession(target, repository, id, size);
    const bytesSent = await send(source, target, repository, id, digest, size, 0, options);
    return { bytesSent, resumedAt: null };
  }
}

async function send(
  source: BlobStore,
  target: Registry,
  repository: string,
  id: string,
  digest: Digest,
  size: number,
  from: number,
  options: BlobCopyOptions,
): Promise<number> {
  const chunk = Math.max(1, options.chunkSize);
  for (let offset = from; offset < size; offset += chunk) {
    const length = Math.min(chunk, size - offset);
    const body = await source.read(digest, { start: offset, end: offset + length - 1 });
    await target.uploads.append(repository, id, body, { offset, expectedLength: length });
    options.onChunk?.(offset + length, size);
  }
  await target.uploads.complete(repository, id, digest);
  return size - from;
}

/**
 * Makes sure the session `id` exists in `repository` and returns how many bytes it holds: a
 * session of an earlier run is kept when it fits, anything else is discarded and restarted.
 */
async function openSession(
  target: Registry,
  repository: string,
  id: string,
  size: number,
): Promise<number> {
  const record = await target.metadata.getUpload(id);
  if (record?.repository === repository) {
    try {
      const state = await target.store.uploadState(id);
      if (state.size <= size) return state.size;
    } catch (err) {
      if (!(err instanceof RegistryError && err.code === "BLOB_UPLOAD_UNKNOWN")) throw err;
    }
  }
  if (record) await target.uploads.cancel(record.repository, id);
  else await target.store.cancelUpload(id);
  // Uploads.start picks a random id; this session needs the derived one, so open it the same
  // way with that id: store first, then the record that scopes it to the repository.
  await target.store.startUpload(id);
  await target.metadata.createUpload(id, repository);
  return 0;
}

function isDigestInvalid(err: unknown): boolean {
  return err instanceof RegistryError && err.code === "DIGEST_INVALID";
}
