/**
 * The S3 {@link BlobStore}: blobs at `<prefix>/blobs/<alg>/<hex>`, upload sessions under
 * `<prefix>/uploads/<id>/`. Any number of Wharf processes may share one bucket: a session's
 * whole state (multipart upload id, part ETags, the sub-5 MiB tail and the serialised SHA-256
 * state) lives in a small JSON object beside its data, so a chunked upload started on one
 * process continues on another and survives a restart.
 *
 * Layout of a session `<prefix>/uploads/<id>/`:
 * - `state.json` — {@link SessionState}; written last on every append, so it is the commit point;
 * - `data` — the multipart upload's key (visible only once the session is sealed at commit);
 * - `tail-<seq>` — bytes that did not fill a 5 MiB part, re-read by the next append.
 *
 * Why a staging key and a server-side copy: a multipart upload's key is fixed when it is
 * created, before the digest is known. Completing it into the session's own `data` key and then
 * copying (CopyObject, server-side, no bytes through Wharf) to the content-addressed key keeps
 * `blobs/` free of anything unverified, and lets a digest mismatch keep the session. A whole blob
 * sent in one final append whose digest is given up front (monolithic push, mirroring,
 * pull-through) skips the copy: its multipart upload is created at the blob's own key, where it
 * stays invisible until the commit has checked the digest and completes it.
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createSHA256 } from "hash-wasm";
import { type Digest, looksLikeDigest, parseDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type {
  AppendOptions,
  BlobInfo,
  BlobStore,
  ByteRange,
  RedirectOptions,
  UploadState,
} from "./blob_store.ts";
import { KeyedLock, type Locks } from "../concurrency/keyed_lock.ts";
import { Append, loadHasher, MIN_PART, type SessionState } from "./s3_session.ts";

const MIB = 1 << 20;
/** CopyObject's largest source; bigger blobs are copied part by part. */
const MAX_COPY = 5 * 1024 * MIB;
const COPY_PART = 1024 * MIB;
const UPLOAD_ID = /^[A-Za-z0-9-]{1,64}$/;

/** Where and how to reach the bucket (the `storage: {driver: s3, …}` configuration). */
export interface S3BlobStoreOptions {
  /** S3 endpoint URL, e.g. `http://127.0.0.1:7480`; AWS's own when absent. */
  endpoint?: string;
  bucket: string;
  /** Defaults to `us-east-1`. */
  region?: string;
  /** Key prefix inside the bucket (no leading or trailing slash needed). */
  prefix?: string;
  /** Path-style addressing (`endpoint/bucket/key`); default true, as RGW and MinIO want. */
  forcePathStyle?: boolean;
  /** Static credentials; the SDK's default chain (env, shared files) when absent. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Bytes per multipart part, at least 5 MiB (default 16 MiB: blobs up to 160 GiB with S3's
   * 10,000 parts; Swift's s3api allows 1,000 by default, so 16 GiB there unless raised).
   */
  partSize?: number;
  /** Parts uploaded at once while the next one fills (default 2). */
  queueSize?: number;
  /** A request whose socket is idle this long fails (ms, default 60 s); retried like others. */
  requestTimeoutMs?: number;
  /** Connection timeout in ms (default 5 s). */
  connectTimeoutMs?: number;
  /** Attempts per request, retries included (default 3). */
  maxAttempts?: number;
  /**
   * Serialises requests on one upload session; pass locks shared by every process on the
   * bucket (in-process only by default).
   */
  locks?: Locks;
  /**
   * Answer blob downloads with presigned GetObject URLs valid this long (seconds, at most
   * 604800 = 7 days, SigV4's limit); absent: Wharf streams the bytes itself.
   */
  redirectExpirySeconds?: number;
  /** The endpoint presigned URLs name, when clients reach S3 by another address (default `endpoint`). */
  redirectEndpoint?: string;
}

/** SigV4's longest presigned URL lifetime (7 days), in seconds. */
export const MAX_REDIRECT_EXPIRY_SECONDS = 7 * 24 * 3600;

/** Blob store on an S3-compatible bucket. */
export class S3BlobStore implements BlobStore {
  readonly driver = "s3";
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  #partSize: number;
  #queueSize: number;
  #redirectExpiry: number | undefined;
  #presigner: S3Client;
  #sessions: Locks;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.prefix = prefix === "" ? "" : `${prefix}/`;
    this.#partSize = Math.max(options.partSize ?? 16 * MIB, MIN_PART);
    this.#queueSize = Math.max(options.queueSize ?? 2, 1);
    this.#redirectExpiry = options.redirectExpirySeconds;
    this.#sessions = options.locks ?? new KeyedLock();
    const client = (endpoint: string | undefined) =>
      new S3Client({
        endpoint,
        region: options.region ?? "us-east-1",
        forcePathStyle: options.forcePathStyle ?? true,
        credentials: options.credentials,
        maxAttempts: options.maxAttempts ?? 3,
        // Streamed bodies with the SDK's default checksums go out as aws-chunked, which Ceph RGW
        // (411) and Swift (501) refuse; Wharf checks content by its own digests anyway.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        requestHandler: {
          // The idle timeout: `requestTimeout` only warns (unless throwOnRequestTimeout) and would
          // bound a whole large transfer; a hung server leaves the socket idle.
          socketTimeout: options.requestTimeoutMs ?? 60_000,
          connectionTimeout: options.connectTimeoutMs ?? 5_000,
        },
      });
    this.client = client(options.endpoint);
    // Presigning makes no request: a second client only names another host in the URL.
    this.#presigner = options.redirectEndpoint ? client(options.redirectEndpoint) : this.client;
  }

  /** Closes the client's sockets. */
  close(): void {
    this.client.destroy();
    if (this.#presigner !== this.client) this.#presigner.destroy();
  }

  /** HeadBucket: the endpoint answers, the credentials work and the bucket exists. */
  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), {
        abortSignal: signal,
      });
    } catch (err) {
      throw unavailable("HeadBucket", err);
    }
  }

  /**
   * A presigned GetObject URL for a stored blob, valid `redirectExpirySeconds` (or
   * `expiresInSeconds`); null when redirects are off. Signed locally: no request is made.
   */
  async redirectUrl(digest: Digest, options: RedirectOptions = {}): Promise<string | null> {
    const expiresIn = options.expiresInSeconds ?? this.#redirectExpiry;
    if (expiresIn === undefined) return null;
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) });
    try {
      return await getSignedUrl(this.#presigner, command, {
        expiresIn: Math.min(expiresIn, MAX_REDIRECT_EXPIRY_SECONDS),
      });
    } catch (err) {
      throw unavailable("presign GetObject", err);
    }
  }

  /** The content-addressed key of a blob. */
  blobKey(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${this.prefix}blobs/${algorithm}/${hex}`;
  }

  #sessionPrefix(id: string): string {
    if (!UPLOAD_ID.test(id)) throw uploadUnknown(id);
    return `${this.prefix}uploads/${id}/`;
  }

  async stat(digest: Digest): Promise<BlobInfo | null> {
    const key = this.blobKey(digest);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { digest, size: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw unavailable("HEAD blob", err);
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    try {
      const object = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.blobKey(digest),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      if (!object.Body) throw new Error("GetObject returned no body");
      return object.Body.transformToWebStream() as ReadableStream<Uint8Array>;
    } catch (err) {
      if (isNotFound(err)) {
        throw new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
      }
      if (errorName(err) === "InvalidRange") {
        throw new RegistryError("RANGE_INVALID", "requested range not satisfiable", {
          status: 416,
        });
      }
      throw unavailable("GET blob", err);
    }
  }

  async delete(digest: Digest): Promise<void> {
    await this.#deleteKey(this.blobKey(digest));
  }

  async *listBlobs(): AsyncIterable<BlobInfo & { modifiedAt: number }> {
    const root = `${this.prefix}blobs/`;
    for await (const object of this.#list(root)) {
      const [algorithm, hex, extra] = object.key.slice(root.length).split("/");
      const digest = `${algorithm}:${hex}`;
      if (extra !== undefined || !looksLikeDigest(digest)) continue;
      yield { digest: digest as Digest, size: object.size, modifiedAt: object.modifiedAt };
    }
  }

  async rehash(digest: Digest): Promise<Digest> {
    const { algorithm } = parseDigest(digest);
    const hash = createHash(algorithm);
    for await (const chunk of await this.read(digest)) hash.update(chunk);
    return `${algorithm}:${hash.digest("hex")}` as Digest;
  }

  async quarantine(digest: Digest): Promise<void> {
    const { algorithm, hex } = parseDigest(digest);
    const info = await this.stat(digest);
    if (!info) {
      throw new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
    }
    await this.#copy(
      this.blobKey(digest),
      `${this.prefix}quarantine/${algorithm}-${hex}`,
      info.size,
    );
    await this.delete(digest);
  }

  async startUpload(id: string): Promise<void> {
    const hasher = await createSHA256();
    hasher.init();
    const now = Date.now();
    await this.#writeState(id, {
      v: 1,
      size: 0,
      startedAt: now,
      modifiedAt: now,
      hash: Buffer.from(hasher.save()).toString("base64"),
      seq: 0,
    });
  }

  async uploadState(id: string): Promise<UploadState> {
    const state = await this.#readState(id);
    return { size: state.size, modifiedAt: state.modifiedAt };
  }

  appendUpload(
    id: string,
    body: ReadableStream<Uint8Array>,
    options: AppendOptions = {},
  ): Promise<UploadState> {
    return this.#sessions.run(`upload:${id}`, async () => {
      let state: SessionState;
      try {
        state = await this.#readState(id);
      } catch (err) {
        await body.cancel().catch(() => {});
        throw err;
      }
      if (state.multipart?.key !== undefined) {
        await body.cancel().catch(() => {});
        throw new RegistryError("BLOB_UPLOAD_INVALID", "the upload was finished; start a new one", {
          status: 400,
        });
      }
      if (options.offset !== undefined && options.offset !== state.size) {
        await body.cancel().catch(() => {});
        throw new RegistryError("RANGE_INVALID", "chunk does not start where the upload ends", {
          status: 416,
          detail: { expected: state.size, got: options.offset },
          headers: { Range: `0-${Math.max(state.size - 1, 0)}` },
        });
      }
      try {
        if (state.pending) {
          await this.abortMultipart(state.pending.key, state.pending.uploadId);
          state = { ...state, pending: undefined };
        }
        state = await this.#resumable(id, state);
      } catch (err) {
        await body.cancel().catch(() => {});
        throw err;
      }
      const next = await new Append(this, id, state, options).run(body);
      await this.#writeState(id, next);
      if (state.tail && state.tail.key !== next.tail?.key) await this.#deleteKey(state.tail.key);
      // A reopened session's content now lives in its new parts: drop the sealed `data` before
      // the next commit overwrites it. S3 frees an overwritten object, but Swift's s3api (2.30)
      // keeps an overwritten multipart object's segments forever; a DELETE removes them.
      if (state.sealed) await this.#deleteKey(this.dataKey(id));
      return { size: next.size, modifiedAt: next.modifiedAt };
    });
  }

  commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    return this.#sessions.run(`upload:${id}`, async () => {
      const { algorithm } = parseDigest(digest);
      let state = await this.#readState(id);
      const mismatch = (actual: string) =>
        new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", {
          detail: { expected: digest, actual },
        });
      // SHA-256 is known from the saved state: a mismatch leaves the session untouched.
      if (algorithm === "sha256") {
        const actual = `sha256:${state.sha256 ?? (await loadHasher(state.hash)).digest("hex")}`;
        if (actual !== digest) throw mismatch(actual);
      }
      if (state.multipart?.key !== undefined) {
        // A direct append: the verified upload completes at the blob's key, unless an equal
        // blob got there first (completing over it would leave Swift its old segments).
        const { key, uploadId, parts } = state.multipart;
        if (await this.stat(digest)) await this.abortMultipart(key, uploadId);
        else await this.#complete(key, uploadId, parts, state.size);
        await this.#removeSession(id, { ...state, multipart: undefined });
        return { digest, size: state.size };
      }
      let source: string | null;
      [state, source] = await this.#seal(id, state);
      if (algorithm !== "sha256") {
        const hash = createHash(algorithm);
        if (source) { for await (const chunk of await this.#get(source)) hash.update(chunk); }
        const actual = `${algorithm}:${hash.digest("hex")}`;
        if (actual !== digest) throw mismatch(actual);
      }
      if (!await this.stat(digest)) {
        if (source) await this.#copy(source, this.blobKey(digest), state.size);
        else await this.#put(this.blobKey(digest), new Uint8Array(0));
      }
      await this.#removeSession(id, state);
      return { digest, size: state.size };
    });
  }

  cancelUpload(id: string): Promise<void> {
    return this.#sessions.run(`upload:${id}`, async () => {
      let state: SessionState | undefined;
      try {
        state = await this.#readState(id);
      } catch (err) {
        if (!(err instanceof RegistryError && err.code === "BLOB_UPLOAD_UNKNOWN")) throw err;
      }
      await this.#removeSession(id, state);
    });
  }

  async listUploads(): Promise<string[]> {
    const root = `${this.prefix}uploads/`;
    const ids: string[] = [];
    for await (const object of this.#list(root)) {
      const [id, name] = object.key.slice(root.length).split("/");
      if (name === "state.json" && UPLOAD_ID.test(id)) ids.push(id);
    }
    return ids;
  }

  // ---- session internals (used by Append too) ----

  /** Uploads one part of the session's multipart upload; returns its ETag. */
  async uploadPart(key: string, uploadId: string, n: number, bytes: Uint8Array): Promise<string> {
    try {
      const out = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: n,
          Body: bytes,
          ContentLength: bytes.length,
        }),
      );
      if (!out.ETag) throw new Error("UploadPart returned no ETag");
      return out.ETag;
    } catch (err) {
      throw unavailable("UploadPart", err);
    }
  }

  /** Starts a multipart upload at `key` (a session's `data`, or a blob's key when direct). */
  async createMultipart(key: string): Promise<string> {
    try {
      const out = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }),
      );
      if (!out.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      return out.UploadId;
    } catch (err) {
      throw unavailable("CreateMultipartUpload", err);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw unavailable("AbortMultipartUpload", err);
    }
  }

  /** Records an append's {@link SessionState.pending} upload before its first part is sent. */
  async recordPending(id: string, state: SessionState): Promise<void> {
    await this.#writeState(id, state);
  }

  dataKey(id: string): string {
    return `${this.#sessionPrefix(id)}data`;
  }

  tailKey(id: string, seq: number): string {
    return `${this.#sessionPrefix(id)}tail-${seq}`;
  }

  get partSize(): number {
    return this.#partSize;
  }

  get queueSize(): number {
    return this.#queueSize;
  }

  /** Reads a whole (small) object into memory. */
  async getBytes(key: string): Promise<Uint8Array> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    } catch (err) {
      throw unavailable("GET upload tail", err);
    }
  }

  /**
   * Copies `size` bytes of `source` server-side into the multipart upload `uploadId` as its
   * first parts (1 GiB each, the last one at least 5 MiB); returns them.
   */
  async copyParts(
    source: string,
    uploadId: string,
    size: number,
    target = source,
  ): Promise<{ n: number; etag: string }[]> {
    const copySource = `${this.bucket}/${source.split("/").map(encodeURIComponent).join("/")}`;
    const parts: { n: number; etag: string }[] = [];
    try {
      for (let start = 0, n = 1; start < size; n++) {
        let end = Math.min(start + COPY_PART, size);
        if (size - end < MIN_PART) end = size;
        const out = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: target,
            UploadId: uploadId,
            PartNumber: n,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end - 1}`,
          }),
        );
        parts.push({ n, etag: out.CopyPartResult?.ETag ?? "" });
        start = end;
      }
    } catch (err) {
      throw unavailable("UploadPartCopy", err);
    }
    return parts;
  }

  async putBytes(key: string, bytes: Uint8Array): Promise<void> {
    await this.#put(key, bytes);
  }

  async deleteKey(key: string): Promise<void> {
    await this.#deleteKey(key);
  }

  /**
   * Makes the session's content one object and returns it with its key (null when empty):
   * completes the multipart upload (the tail as its last part) into `data`, or takes the tail
   * object as it is. Recorded in the state, so a retried commit does not complete twice.
   */
  async #seal(id: string, state: SessionState): Promise<[SessionState, string | null]> {
    if (state.sealed) return [state, this.dataKey(id)];
    if (!state.multipart) return [state, state.tail?.key ?? null];
    const { uploadId } = state.multipart;
    const parts = [...state.multipart.parts];
    const key = this.dataKey(id);
    if (state.tail) {
      const n = parts.length + 1;
      parts.push({
        n,
        etag: await this.uploadPart(key, uploadId, n, await this.getBytes(state.tail.key)),
      });
    }
    await this.#complete(key, uploadId, parts, state.size);
    const sealed: SessionState = { ...state, multipart: undefined, tail: undefined, sealed: true };
    await this.#writeState(id, sealed);
    if (state.tail) await this.#deleteKey(state.tail.key);
    return [sealed, key];
  }

  /** Completes a multipart upload of `size` bytes at `key`; a retry after success is no error. */
  async #complete(
    key: string,
    uploadId: string,
    parts: { n: number; etag: string }[],
    size: number,
  ): Promise<void> {
    try {
      // Ceph RGW answers an empty ETag here: the response is not used.
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      // Completed by an earlier try that died before it could record so.
      if (!isNotFound(err) || (await this.#headSize(key)) !== size) {
        throw unavailable("CompleteMultipartUpload", err);
      }
    }
  }

  /**
   * The session with a resumable hash state: content hashed natively (`sha256`) is sealed into
   * one object if need be and read back through hash-wasm, once, before a second append.
   */
  async #resumable(id: string, state: SessionState): Promise<SessionState> {
    if (state.sha256 === undefined) return state;
    let source: string | null;
    [state, source] = await this.#seal(id, state);
    const hasher = await createSHA256();
    hasher.init();
    if (source) { for await (const chunk of await this.#get(source)) hasher.update(chunk); }
    const hash = Buffer.from(hasher.save()).toString("base64");
    if (hasher.digest("hex") !== state.sha256) {
      throw new RegistryError(
        "UNAVAILABLE",
        `upload ${id}: the stored content differs from what was sent`,
      );
    }
    const next: SessionState = { ...state, hash, sha256: undefined };
    await this.#writeState(id, next);
    return next;
  }

  /** Aborts the session's multipart uploads (recorded or orphaned) and deletes its objects. */
  async #removeSession(id: string, state?: SessionState): Promise<void> {
    const prefix = this.#sessionPrefix(id);
    if (state?.multipart) {
      const { key = this.dataKey(id), uploadId } = state.multipart;
      await this.abortMultipart(key, uploadId);
    }
    if (state?.pending) await this.abortMultipart(state.pending.key, state.pending.uploadId);
    try {
      // An append that died after CreateMultipartUpload leaves an upload no state names.
      const out = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }),
      );
      for (const upload of out.Uploads ?? []) {
        if (upload.Key && upload.UploadId) await this.abortMultipart(upload.Key, upload.UploadId);
      }
    } catch (err) {
      throw unavailable("ListMultipartUploads", err);
    }
    const keys: string[] = [];
    for await (const object of this.#list(prefix)) keys.push(object.key);
    // state.json last: while it exists the session is still listed and can be cancelled again.
    keys.sort((a, b) => Number(a.endsWith("/state.json")) - Number(b.endsWith("/state.json")));
    for (const key of keys) await this.#deleteKey(key);
  }

  async #readState(id: string): Promise<SessionState> {
    const key = `${this.#sessionPrefix(id)}state.json`;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return JSON.parse(await out.Body!.transformToString()) as SessionState;
    } catch (err) {
      if (isNotFound(err)) throw uploadUnknown(id);
      throw unavailable("GET upload state", err);
    }
  }

  async #writeState(id: string, state: SessionState): Promise<void> {
    const key = `${this.#sessionPrefix(id)}state.json`;
    await this.#put(key, new TextEncoder().encode(JSON.stringify(state)));
  }

  async #put(key: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.length,
        }),
      );
    } catch (err) {
      throw unavailable("PUT object", err);
    }
  }

  async #get(key: string): Promise<ReadableStream<Uint8Array>> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body!.transformToWebStream() as ReadableStream<Uint8Array>;
    } catch (err) {
      throw unavailable("GET object", err);
    }
  }

  async #headSize(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw unavailable("HEAD object", err);
    }
  }

  async #deleteKey(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (!isNotFound(err)) throw unavailable("DELETE object", err);
    }
  }

  /** Server-side copy; part by part above CopyObject's 5 GiB limit. */
  async #copy(from: string, to: string, size: number): Promise<void> {
    const source = `${this.bucket}/${from.split("/").map(encodeURIComponent).join("/")}`;
    try {
      if (size <= MAX_COPY) {
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source }),
        );
        return;
      }
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to }),
      );
      const uploadId = created.UploadId!;
      try {
        const parts = await this.copyParts(from, uploadId, size, to);
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: to,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
          }),
        );
      } catch (err) {
        await this.abortMultipart(to, uploadId).catch(() => {});
        throw err;
      }
    } catch (err) {
      throw unavailable("CopyObject", err);
    }
  }

  async *#list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: number }> {
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw unavailable("ListObjectsV2", err);
      }
      for (const object of out.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key,
          size: object.Size ?? 0,
          modifiedAt: object.LastModified?.getTime() ?? 0,
        };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }
}

function errorName(err: unknown): string {
  return (err as { name?: string })?.name ?? "";
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  if (name === "NotFound" || name === "NoSuchKey" || name === "NoSuchUpload") return true;
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404;
}

/** Any failure to talk to the bucket: 503, with the operation and the cause in the message. */
function unavailable(operation: string, err: unknown): Error {
  if (err instanceof RegistryError) return err;
  const cause = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new RegistryError(
    "UNAVAILABLE",
    `object storage unavailable: ${operation} failed (${cause})`,
    {
      status: 503,
      cause: err,
    },
  );
}

function uploadUnknown(id: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {
    detail: { id },
  });
}
