/**
 * Copying content from an upstream registry into the local registry service: one blob, or one
 * manifest with everything it needs (blobs, child manifests). These are the building blocks
 * of a mirror run and of pull-through ("fetch this image from the upstream now").
 *
 * Every byte is verified on arrival: manifests by the client against the digest asked for,
 * blobs by the client's verifying stream and again by the registry's upload commit, which
 * refuses a wrong digest and discards the session. Nothing is visible locally before it is
 * complete, so an interrupted copy leaves nothing corrupt and is simply redone.
 * @module
 */
import { type FetchedManifest, RegistryClient } from "../client/registry_client.ts";
import { RegistryClientError } from "../client/registry_client.ts";
import { type Digest, digestOf, toDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { type Descriptor, parseManifest } from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media_types.ts";
import { ALLOW_ALL } from "../registry/access.ts";
import type { Registry } from "../registry/registry.ts";
import { platformSelected } from "./filters.ts";
import { Limiter } from "./limiter.ts";
import { type RetryPolicy, withRetries } from "./upstream.ts";

/** Annotation of an index rewritten to fewer platforms: the upstream index it came from. */
export const SOURCE_INDEX_ANNOTATION = "dev.wharf.mirror.source-index";

/** Counters of a copier, shared by everything it copies. */
export interface CopyStats {
  manifests: number;
  blobs: number;
  /** Bytes of blobs stored (each blob once, retries not counted). */
  bytes: number;
}

/** What a copier needs. */
export interface CopierOptions {
  client: RegistryClient;
  registry: Registry;
  retry: RetryPolicy;
  /** Blobs transferred at the same time. */
  concurrency: number;
  /** Told about every chunk received (for progress and rates). */
  onBytes?: (bytes: number) => void;
}

/** The result of copying a manifest. */
export interface CopiedManifest {
  /** Digest stored locally (differs from `upstreamDigest` only for a platform-filtered index). */
  digest: Digest;
  upstreamDigest: Digest;
  mediaType: string;
  size: number;
  /** False when it was already present and nothing was written. */
  written: boolean;
  /** Child manifests copied (indexes). */
  children: Digest[];
  /** True when an index was rewritten to the selected platforms. */
  filtered: boolean;
}

/**
 * Copies blobs and manifests from one upstream into the local registry, at most
 * `concurrency` blob transfers at a time; a blob wanted twice at once is fetched once.
 *
 * @example
 * ```ts
 * const copier = new Copier({ client, registry, retry, concurrency: 4 });
 * await copier.manifest("library/alpine", "mirror/alpine", digest, { tag: "3.20" });
 * ```
 */
export class Copier {
  readonly stats: CopyStats = { manifests: 0, blobs: 0, bytes: 0 };
  readonly #options: CopierOptions;
  readonly #limiter: Limiter;
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(options: CopierOptions) {
    this.#options = options;
    this.#limiter = new Limiter(options.concurrency);
  }

  /** The copy of a blob under way (here or registered by {@link track}), if any. */
  pending(repository: string, digest: string): Promise<void> | undefined {
    return this.#inflight.get(`${repository}@${digest}`);
  }

  /** Registers other work that makes a blob present, so copies of the same blob wait for it. */
  track(repository: string, digest: string, work: Promise<void>): void {
    const key = `${repository}@${digest}`;
    const settled = work.catch(() => {}).finally(() => {
      if (this.#inflight.get(key) === settled) this.#inflight.delete(key);
    });
    this.#inflight.set(key, settled);
  }

  /** Makes `descriptor`'s blob present in `repository`: already there, mounted, or fetched. */
  blob(upstreamRepository: string, repository: string, descriptor: Descriptor): Promise<void> {
    const key = `${repository}@${descriptor.digest}`;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#blob(upstreamRepository, repository, descriptor).finally(() =>
        this.#inflight.delete(key)
      );
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #blob(upstreamRepository: string, repository: string, descriptor: Descriptor) {
    const { registry } = this.#options;
    const digest = descriptor.digest;
    if (await registry.metadata.linkedBlobSize(repository, digest) !== null) return;
    // Same bytes in another repository: link them instead of downloading again.
    for (const source of await registry.metadata.repositoriesWithBlob(digest)) {
      if (await registry.uploads.mount(repository, digest, source, ALLOW_ALL)) return;
    }
    await this.#limiter.run(() =>
      withRetries(`blob ${digest}`, this.#options.retry, async () => {
        const stream = await this.#options.client.openBlob(upstreamRepository, digest);
        const { id } = await registry.uploads.start(repository);
        try {
          const blob = await registry.uploads.complete(repository, id, digest, {
            body: stream.pipeThrough(this.#counter()),
          });
          this.stats.blobs++;
          this.stats.bytes += blob.size;
        } catch (err) {
          await registry.uploads.cancel(repository, id).catch(() => {});
          throw err;
        }
      })
    );
  }

  #counter(): TransformStream<Uint8Array, Uint8Array> {
    const onBytes = this.#options.onBytes;
    return new TransformStream({
      transform(chunk, controller) {
        onBytes?.(chunk.length);
        controller.enqueue(chunk);
      },
    });
  }

  /** Fetches a manifest by digest from the upstream (verified), with retries. */
  async fetch(upstreamRepository: string, digest: string): Promise<FetchedManifest> {
    const fetched = await withRetries(
      `manifest ${digest}`,
      this.#options.retry,
      () => this.#options.client.getManifest(upstreamRepository, digest),
    );
    if (!fetched) {
      throw new RegistryClientError(`manifest ${upstreamRepository}@${digest} not found`, 404);
    }
    return fetched;
  }

  /**
   * Makes the manifest `digest` present in `repository` (tagged `tag` when given) with every
   * blob and child manifest it needs. With `platforms`, an index keeps only matching children:
   * when all match the index is stored byte for byte, otherwise a new index listing only them
   * is stored (new digest, {@link SOURCE_INDEX_ANNOTATION} names the upstream one).
   */
  async manifest(
    upstreamRepository: string,
    repository: string,
    digest: string,
    options: { tag?: string; platforms?: string[]; fetched?: FetchedManifest } = {},
  ): Promise<CopiedManifest> {
    const { registry } = this.#options;
    const upstreamDigest = toDigest(digest);
    const local = await registry.metadata.getManifest(repository, upstreamDigest);
    if (local) {
      let written = false;
      if (options.tag && await registry.metadata.resolveTag(repository, options.tag) !== digest) {
        await registry.manifests.put(
          repository,
          { kind: "tag", tag: options.tag },
          local.content,
          local.mediaType,
        );
        written = true;
      }
      return {
        digest: upstreamDigest,
        upstreamDigest,
        mediaType: local.mediaType,
        size: local.size,
        written,
        children: [],
        filtered: false,
      };
    }
    const fetched = options.fetched ?? await this.fetch(upstreamRepository, digest);
    let bytes = fetched.bytes as Uint8Array<ArrayBuffer>;
    const parsed = parseManifest(bytes, fetched.mediaType);
    const children: Digest[] = [];
    let filtered = false;
    if (isIndexMediaType(parsed.mediaType)) {
      const selected = parsed.manifests.filter((child) =>
        platformSelected(child.platform, options.platforms ?? [])
      );
      if (selected.length === 0) {
        throw new SkipError(`no child of index ${digest} matches the platforms`);
      }
      // Children one after the other: each copies its own blobs concurrently.
      for (const child of selected) {
        await this.manifest(upstreamRepository, repository, child.digest);
        children.push(child.digest);
      }
      if (selected.length < parsed.manifests.length) {
        const index = JSON.parse(new TextDecoder().decode(bytes));
        index.manifests = index.manifests.filter((m: { digest: string }) =>
          selected.some((s) => s.digest === m.digest)
        );
        index.annotations = { ...index.annotations, [SOURCE_INDEX_ANNOTATION]: digest };
        bytes = new TextEncoder().encode(JSON.stringify(index));
        filtered = true;
      }
    } else {
      const results = await Promise.allSettled(
        parsed.blobs.map((blob) => this.blob(upstreamRepository, repository, blob)),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    const reference = options.tag
      ? { kind: "tag" as const, tag: options.tag }
      : { kind: "digest" as const, digest: digestOf(bytes) };
    const pushed = await registry.manifests.put(repository, reference, bytes, fetched.mediaType);
    if (!filtered && pushed.digest !== upstreamDigest) {
      throw new RegistryError("DIGEST_INVALID", `stored ${pushed.digest}, expected ${digest}`);
    }
    this.stats.manifests++;
    return {
      digest: pushed.digest,
      upstreamDigest,
      mediaType: pushed.mediaType,
      size: bytes.length,
      written: true,
      children,
      filtered,
    };
  }
}

/** A reason not to copy something that is not an error (e.g. no matching platform). */
export class SkipError extends Error {
  override name = "SkipError";
}

/**
 * True for failures a retry of the whole operation may cure: the content arrived wrong or cut
 * short (wrong digest, truncated or stalled body). Statuses (429, 5xx) and network errors were
 * already retried by the client; 4xx answers will not change.
 */
export function retryableCopyError(err: unknown): boolean {
  if (err instanceof SkipError) return false;
  if (err instanceof RegistryClientError) return err.status === 502 || err.status === 504;
  if (err instanceof RegistryError) {
    return err.code === "DIGEST_INVALID" || err.code === "SIZE_INVALID" ||
      err.code === "BLOB_UPLOAD_INVALID";
  }
  return true;
}
