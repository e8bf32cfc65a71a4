/**
 * The filesystem {@link BlobStore}: blobs at `blobs/<alg>/<2 hex>/<hex>`, upload sessions as
 * files under `uploads/`. Content is hashed while written, fsynced and renamed into place only
 * after its digest checked out, so a crash or an aborted request never leaves a visible
 * half-written blob.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { dirname, join } from "node:path";
import { ALGORITHMS, type Digest, looksLikeDigest, parseDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { AppendOptions, BlobInfo, BlobStore, ByteRange, UploadState } from "./blob_store.ts";
import { KeyedLock } from "../concurrency/keyed_lock.ts";
import { exists } from "../io/exists.ts";

const IO_CHUNK = 1 << 20;
const UPLOAD_ID = /^[A-Za-z0-9-]{1,64}$/;

interface HashState {
  hash: Hash;
  size: number;
}

/** Blob store on a local directory. Use {@link FilesystemBlobStore.open}. */
export class FilesystemBlobStore implements BlobStore {
  readonly driver = "filesystem";
  readonly root: string;
  // Hash objects cannot be persisted: after a restart the session file is re-hashed once.
  #hashes = new Map<string, HashState>();
  #sessions = new KeyedLock();

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (creating if needed) a blob store rooted at `root`. */
  static async open(root: string): Promise<FilesystemBlobStore> {
    await Deno.mkdir(join(root, "blobs"), { recursive: true });
    await Deno.mkdir(join(root, "uploads"), { recursive: true });
    return new FilesystemBlobStore(root);
  }

  /** Creates and removes an empty file in `uploads/`: the directory is there and writable. */
  async ping(): Promise<void> {
    // The leading dot keeps the probe out of listUploads (not a valid session id).
    const probe = await Deno.makeTempFile({ dir: join(this.root, "uploads"), prefix: ".ping-" });
    await Deno.remove(probe);
  }

  #blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, "blobs", algorithm, hex.slice(0, 2), hex);
  }

  #uploadPath(id: string): string {
    if (!UPLOAD_ID.test(id)) throw uploadUnknown(id);
    return join(this.root, "uploads", id);
  }

  async stat(digest: Digest): Promise<BlobInfo | null> {
    try {
      const info = await Deno.stat(this.#blobPath(digest));
      return { digest, size: info.size };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#blobPath(digest), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
      }
      throw err;
    }
    if (range) await file.seek(range.start, Deno.SeekMode.Start);
    // To the end of the file Deno streams the file resource natively: about 30% less CPU per
    // byte than reading it into JavaScript (measured 680 against 1000 ms of CPU per GB).
    if (!range || range.end === (await file.stat()).size - 1) return file.readable;
    let remaining = range.end - range.start + 1;
    return new ReadableStream<Uint8Array>({
      type: "bytes",
      async pull(controller) {
        try {
          const buffer = new Uint8Array(Math.min(IO_CHUNK, remaining));
          const n = buffer.length === 0 ? null : await file.read(buffer);
          if (n === null) {
            file.close();
            controller.close();
            return;
          }
          remaining -= n;
          controller.enqueue(n === buffer.length ? buffer : buffer.subarray(0, n));
        } catch (err) {
          file.close();
          controller.error(err);
        }
      },
      cancel() {
        file.close();
      },
    });
  }

  async delete(digest: Digest): Promise<void> {
    await removeIfPresent(this.#blobPath(digest));
  }

  async *listBlobs(): AsyncIterable<BlobInfo & { modifiedAt: number }> {
    const root = join(this.root, "blobs");
    for await (const algorithm of Deno.readDir(root)) {
      if (!algorithm.isDirectory || !(algorithm.name in ALGORITHMS)) continue;
      for await (const prefix of Deno.readDir(join(root, algorithm.name))) {
        if (!prefix.isDirectory) continue;
        for await (const entry of Deno.readDir(join(root, algorithm.name, prefix.name))) {
          const digest = `${algorithm.name}:${entry.name}`;
          if (!entry.isFile || !looksLikeDigest(digest)) continue;
          const info = await Deno.stat(join(root, algorithm.name, prefix.name, entry.name));
          yield {
            digest: digest as Digest,
            size: info.size,
            modifiedAt: info.mtime?.getTime() ?? 0,
          };
        }
      }
    }
  }

  async rehash(digest: Digest): Promise<Digest> {
    const { algorithm } = parseDigest(digest);
    const file = await Deno.open(this.#blobPath(digest), { read: true });
    try {
      return `${algorithm}:${(await hashFile(file, algorithm)).hash.digest("hex")}` as Digest;
    } finally {
      file.close();
    }
  }

  async quarantine(digest: Digest): Promise<void> {
    const { algorithm, hex } = parseDigest(digest);
    await Deno.mkdir(join(this.root, "quarantine"), { recursive: true });
    await Deno.rename(this.#blobPath(digest), join(this.root, "quarantine", `${algorithm}-${hex}`));
  }

  async startUpload(id: string): Promise<void> {
    const file = await Deno.open(this.#uploadPath(id), { write: true, createNew: true });
    file.close();
    this.#hashes.set(id, { hash: createHash("sha256"), size: 0 });
  }

  async uploadState(id: string): Promise<UploadState> {
    try {
      const info = await Deno.stat(this.#uploadPath(id));
      return { size: info.size, modifiedAt: info.mtime?.getTime() };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw uploadUnknown(id);
      throw err;
    }
  }

  appendUpload(
    id: string,
    body: ReadableStream<Uint8Array>,
    options: AppendOptions = {},
  ): Promise<UploadState> {
    return this.#sessions.run(id, async () => {
      const file = await this.#openUpload(id);
      try {
        const state = await this.#hashState(id, file);
        const start = state.size;
        if (options.offset !== undefined && options.offset !== start) {
          throw new RegistryError("RANGE_INVALID", "chunk does not start where the upload ends", {
            status: 416,
            detail: { expected: start, got: options.offset },
            headers: { Range: `0-${Math.max(start - 1, 0)}` },
          });
        }
        const before = state.hash.copy();
        try {
          await file.seek(start, Deno.SeekMode.Start);
          const room = options.limit === undefined ? Infinity : options.limit - start;
          const written = await writeHashed(body, file, state.hash, room);
          if (options.expectedLength !== undefined && written !== options.expectedLength) {
            throw new RegistryError("SIZE_INVALID", "body length differs from Content-Length", {
              detail: { expected: options.expectedLength, got: written },
            });
          }
          state.size = start + written;
        } catch (err) {
          // All or nothing: cut the partial chunk off and restore the hash.
          await file.truncate(start);
          state.hash = before;
          state.size = start;
          throw err;
        }
        return { size: state.size };
      } finally {
        file.close();
      }
    });
  }

  commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    return this.#sessions.run(id, async () => {
      const { algorithm } = parseDigest(digest);
      const path = this.#uploadPath(id);
      const file = await this.#openUpload(id);
      let size: number;
      try {
        const state = await this.#hashState(id, file);
        size = state.size;
        const actual = algorithm === "sha256"
          ? `sha256:${state.hash.copy().digest("hex")}`
          : `${algorithm}:${(await hashFile(file, algorithm)).hash.digest("hex")}`;
        if (actual !== digest) {
          throw new RegistryError(
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            {
              detail: { expected: digest, actual },
            },
          );
        }
        await file.syncData();
      } finally {
        file.close();
      }
      const target = this.#blobPath(digest);
      await Deno.mkdir(dirname(target), { recursive: true });
      if (await exists(target)) {
        await Deno.remove(path); // stored once: identical content is already there
      } else {
        await Deno.rename(path, target);
        await syncDirectory(dirname(target));
      }
      this.#hashes.delete(id);
      return { digest, size };
    });
  }

  cancelUpload(id: string): Promise<void> {
    return this.#sessions.run(id, async () => {
      this.#hashes.delete(id);
      await removeIfPresent(this.#uploadPath(id));
    });
  }

  async listUploads(): Promise<string[]> {
    const ids: string[] = [];
    for await (const entry of Deno.readDir(join(this.root, "uploads"))) {
      if (entry.isFile && UPLOAD_ID.test(entry.name)) ids.push(entry.name);
    }
    return ids;
  }

  async #openUpload(id: string): Promise<Deno.FsFile> {
    try {
      return await Deno.open(this.#uploadPath(id), { read: true, write: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw uploadUnknown(id);
      throw err;
    }
  }

  /** The session's running hash, rebuilt from its file when the process lost it. */
  async #hashState(id: string, file: Deno.FsFile): Promise<HashState> {
    const size = (await file.stat()).size;
    let state = this.#hashes.get(id);
    if (!state || state.size !== size) {
      state = await hashFile(file, "sha256");
      this.#hashes.set(id, state);
    }
    return state;
  }
}

function tooLarge(): RegistryError {
  return new RegistryError("SIZE_INVALID", "the upload exceeds the size allowed here", {
    status: 413,
  });
}

function uploadUnknown(id: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {
    detail: { id },
  });
}

/**
 * Copies `body` to `file` at its position in 1 MiB writes, feeding every byte to `hash`; fails
 * with `SIZE_INVALID` once more than `room` bytes arrived.
 */
async function writeHashed(
  body: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  hash: Hash,
  room: number,
): Promise<number> {
  const buffer = new Uint8Array(IO_CHUNK);
  let filled = 0;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > room) throw tooLarge();
    hash.update(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, buffer.length - filled);
      buffer.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === buffer.length) {
        writeAll(file, buffer);
        filled = 0;
      }
    }
  }
  if (filled > 0) writeAll(file, buffer.subarray(0, filled));
  return total;
}

/**
 * Writes synchronously: a 1 MiB write to the page cache takes well under a millisecond, while
 * an awaited write between reads of a request body made uploads several times slower (measured:
 * 28 MiB/s awaited against 164 MiB/s synchronous for the same 100 MiB stream from Deno's fetch).
 */
function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

async function hashFile(file: Deno.FsFile, algorithm: string): Promise<HashState> {
  const hash = createHash(algorithm);
  const buffer = new Uint8Array(IO_CHUNK);
  let size = 0;
  await file.seek(0, Deno.SeekMode.Start);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    size += n;
  }
  return { hash, size };
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Makes a rename durable: fsync the directory that holds the new name. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}
