/**
 * The S3 store's upload session as it is persisted (`uploads/<id>/state.json`) and the append
 * that extends it: body in, parts and a tail out, hashed on the way.
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { createSHA256, type IHasher } from "hash-wasm";
import { RegistryError } from "../oci/errors.ts";
import type { AppendOptions } from "./blob_store.ts";
import type { S3BlobStore } from "./s3.ts";

/** S3's smallest part (all but the last). */
export const MIN_PART = 5 * (1 << 20);

/** The persisted state of one upload session (`uploads/<id>/state.json`). */
export interface SessionState {
  v: 1;
  size: number;
  startedAt: number;
  modifiedAt: number;
  /** hash-wasm SHA-256 state after `size` bytes, base64 ("" while `sha256` is set). */
  hash: string;
  /**
   * SHA-256 hex of the content so far, set by the first append (hashed with node:crypto, about
   * 6x faster than hash-wasm, whose state can be saved). Most clients send a blob in one append;
   * a second append first re-hashes the content so far into `hash` ({@link S3BlobStore.#resumable}).
   */
  sha256?: string;
  /** Bumped on every append; names the next tail object. */
  seq: number;
  /** `key`: where the upload lives when not at `data` (the blob's own key, for a direct append). */
  multipart?: { uploadId: string; parts: { n: number; etag: string }[]; key?: string };
  /**
   * A multipart upload at a blob's key that an append in progress created, recorded before its
   * first part: an append that dies leaves nothing no state names (`data` uploads are found by
   * listing the session's prefix instead).
   */
  pending?: { key: string; uploadId: string };
  tail?: { key: string; size: number };
  /** Set once the multipart upload was completed into `data` (commit in progress). */
  sealed?: boolean;
}

/**
 * One append to a session: fills `partSize` buffers from the body while hashing, uploads each
 * full buffer as the next part (up to `queueSize` at once, so memory stays at about
 * `(queueSize + 1) × partSize` whatever the blob size), and leaves what is left as a part
 * (≥ 5 MiB) or as a new tail object. Returns the next state; on failure it undoes what it can
 * (a multipart upload it created is aborted, a tail it wrote is deleted) and the persisted state
 * is untouched, so parts it uploaded past the recorded ones are simply overwritten or left out
 * of the completion.
 */
export class Append {
  #store: S3BlobStore;
  #id: string;
  #state: SessionState;
  #options: AppendOptions;
  #createdUpload?: { key: string; uploadId: string };
  #newTail?: string;

  constructor(store: S3BlobStore, id: string, state: SessionState, options: AppendOptions) {
    this.#store = store;
    this.#id = id;
    this.#state = state;
    this.#options = options;
  }

  async run(body: ReadableStream<Uint8Array>): Promise<SessionState> {
    try {
      return await this.#run(body);
    } catch (err) {
      if (this.#createdUpload) {
        const { key, uploadId } = this.#createdUpload;
        await this.#store.abortMultipart(key, uploadId).catch(() => {});
      }
      if (this.#newTail) await this.#store.deleteKey(this.#newTail).catch(() => {});
      throw err;
    }
  }

  async #run(body: ReadableStream<Uint8Array>): Promise<SessionState> {
    const store = this.#store;
    const state = this.#state;
    // The first append hashes natively; a second one re-hashes resumably first (#resumable).
    const native = state.size === 0 && !state.sealed ? createHash("sha256") : undefined;
    const hasher = native ?? await loadHasher(state.hash);
    // A whole blob whose digest is known goes straight to its key (invisible until completed).
    const digest = this.#options.digest;
    const direct = this.#options.final === true && native !== undefined &&
      digest !== undefined && digest.startsWith("sha256:");
    const partSize = store.partSize;
    let multipart: SessionState["multipart"] = state.multipart
      ? { uploadId: state.multipart.uploadId, parts: [...state.multipart.parts] }
      : undefined;
    const inFlight: Promise<void>[] = [];
    const key = store.dataKey(this.#id);
    const create = async (at: string) => {
      const uploadId = await store.createMultipart(at);
      this.#createdUpload = { key: at, uploadId };
      return uploadId;
    };

    let buffer = new Uint8Array(partSize);
    let filled = 0;
    if (state.sealed && state.size >= MIN_PART) {
      // A commit completed the upload and then failed its digest check: reopen it, the
      // content so far copied server-side as the first parts of a new multipart upload.
      const uploadId = await create(key);
      multipart = { uploadId, parts: await store.copyParts(key, uploadId, state.size) };
    } else if (state.sealed || state.tail) {
      const tail = await store.getBytes(state.sealed ? key : state.tail!.key);
      buffer.set(tail);
      filled = tail.length;
    }
    const flush = async (bytes: Uint8Array) => {
      if (!multipart) {
        if (direct) {
          const at = store.blobKey(digest);
          const uploadId = await create(at);
          await store.recordPending(this.#id, { ...state, pending: { key: at, uploadId } });
          multipart = { uploadId, parts: [], key: at };
        } else {
          multipart = { uploadId: await create(key), parts: [] };
        }
      }
      const n = multipart.parts.length + 1;
      const part = { n, etag: "" };
      multipart.parts.push(part);
      const { uploadId, key: at = key } = multipart;
      if (inFlight.length >= store.queueSize) await inFlight.shift();
      inFlight.push(
        store.uploadPart(at, uploadId, n, bytes).then((etag) => {
          part.etag = etag;
        }),
      );
    };

    const room = this.#options.limit === undefined ? Infinity : this.#options.limit - state.size;
    let received = 0;
    try {
      for await (const chunk of body) {
        received += chunk.length;
        if (received > room) {
          throw new RegistryError("SIZE_INVALID", "the upload exceeds the size allowed here", {
            status: 413,
          });
        }
        hasher.update(chunk);
        let offset = 0;
        while (offset < chunk.length) {
          const n = Math.min(chunk.length - offset, partSize - filled);
          buffer.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === partSize) {
            await flush(buffer);
            buffer = new Uint8Array(partSize);
            filled = 0;
          }
        }
      }
      const expected = this.#options.expectedLength;
      if (expected !== undefined && received !== expected) {
        throw new RegistryError("SIZE_INVALID", "body length differs from Content-Length", {
          detail: { expected, got: received },
        });
      }
      let tail: SessionState["tail"];
      // A direct upload's last part may be short: nothing is appended after it.
      if (filled >= MIN_PART || (filled > 0 && multipart?.key !== undefined)) {
        await flush(buffer.subarray(0, filled));
      } else if (filled > 0) {
        const tailKey = store.tailKey(this.#id, state.seq + 1);
        this.#newTail = tailKey;
        await store.putBytes(tailKey, buffer.subarray(0, filled));
        tail = { key: tailKey, size: filled };
      }
      await Promise.all(inFlight);
      return {
        ...state,
        size: state.size + received,
        modifiedAt: Date.now(),
        ...(native
          ? { hash: "", sha256: native.digest("hex") }
          : { hash: Buffer.from((hasher as IHasher).save()).toString("base64") }),
        seq: state.seq + 1,
        multipart,
        tail,
        sealed: undefined,
        pending: undefined,
      };
    } finally {
      // Never leave a part upload running past a failed append.
      await Promise.allSettled(inFlight);
    }
  }
}

/** A hash-wasm SHA-256 hasher resumed from its saved state (base64). */
export async function loadHasher(state: string): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.load(Buffer.from(state, "base64"));
  return hasher;
}
