/**
 * Pull-through (on-demand mirroring): a pull that misses in a repository a `pullThrough` mirror
 * covers is answered from the upstream. A manifest is fetched (verified) and served, and stored
 * in the background with its blobs and attachments; a blob is streamed to the client while it
 * is stored, fetched once however many clients ask at the same time.
 * @module
 */
import type { RegistryClient } from "../client/registry_client.ts";
import { RegistryClientError } from "../client/registry_client.ts";
import { repositoryMatcher } from "../config/globs.ts";
import type { Logger } from "../log/logger.ts";
import type { StoredManifest } from "../metadata/metadata_store.ts";
import type { Digest } from "../oci/digest.ts";
import type { Reference } from "../oci/names.ts";
import { RegistryError } from "../oci/errors.ts";
import type { PluginHost } from "../plugins/host.ts";
import type { PullThroughSource } from "../registry/pull_through.ts";
import type { Registry } from "../registry/registry.ts";
import { copyAttachments } from "./attachments.ts";
import { Copier, retryableCopyError } from "./copy.ts";
import { isGlob, selectTags } from "./filters.ts";
import type { MirrorConfig } from "./schema.ts";
import { upstreamClient } from "./upstream.ts";

/** How long the background copy of a pulled manifest waits for the client's blob requests. */
const BACKGROUND_DELAY_MS = 1000;

/** What pull-through needs from the process. */
export interface PullThroughDeps {
  registry: Registry;
  log: Logger;
  plugins?: PluginHost;
  /** The local signatures extension API, for atomic signatures. */
  extensions?: (request: Request) => Promise<Response>;
}

interface Upstream {
  mirror: MirrorConfig;
  matches: (upstreamRepository: string) => boolean;
  connection?: Promise<{ client: RegistryClient; copier: Copier; atomic: boolean }>;
}

/** The pull-through source of every mirror with `pullThrough: true`. */
export class PullThrough implements PullThroughSource {
  readonly #deps: PullThroughDeps;
  readonly #upstreams: Upstream[];
  readonly #background = new Set<Promise<void>>();

  constructor(mirrors: MirrorConfig[], deps: PullThroughDeps) {
    this.#deps = deps;
    this.#upstreams = mirrors.filter((m) => m.pullThrough).map((mirror) => {
      const globs = mirror.repositories.filter(isGlob);
      const names = new Set(mirror.repositories.filter((r) => !isGlob(r)));
      const glob = globs.length ? repositoryMatcher(globs) : () => false;
      return { mirror, matches: (name: string) => names.has(name) || glob(name) };
    });
  }

  /** True when any mirror serves pulls on demand. */
  get enabled(): boolean {
    return this.#upstreams.length > 0;
  }

  /** The mirror covering a local repository, and the upstream name it maps to. */
  #route(repository: string): { upstream: Upstream; upstreamRepository: string } | null {
    for (const upstream of this.#upstreams) {
      const { prefix, stripPrefix } = upstream.mirror.destination;
      if (!repository.startsWith(prefix)) continue;
      const upstreamRepository = stripPrefix + repository.slice(prefix.length);
      if (upstream.matches(upstreamRepository)) return { upstream, upstreamRepository };
    }
    return null;
  }

  #connect(upstream: Upstream) {
    upstream.connection ??= (async () => {
      const { mirror } = upstream;
      const client = await upstreamClient(mirror);
      const copier = new Copier({
        client,
        registry: this.#deps.registry,
        concurrency: mirror.concurrency,
        retry: {
          attempts: mirror.retries.attempts,
          delay: mirror.retries.delay,
          maxDelay: mirror.retries.maxDelay,
          retryable: retryableCopyError,
        },
      });
      const headers = await client.ping().catch(() => new Headers());
      return { client, copier, atomic: headers.get("x-registry-supports-signatures") === "1" };
    })();
    upstream.connection.catch(() => upstream.connection = undefined);
    return upstream.connection;
  }

  async manifest(repository: string, reference: Reference): Promise<StoredManifest | null> {
    const route = this.#route(repository);
    if (!route) return null;
    const { mirror } = route.upstream;
    if (reference.kind === "tag" && selectTags([reference.tag], mirror.tags).length === 0) {
      return null;
    }
    const { client, copier } = await this.#connect(route.upstream);
    const fetched = await client.getManifest(
      route.upstreamRepository,
      reference.kind === "tag" ? reference.tag : reference.digest,
    ).catch((err) => this.#unavailable(err));
    if (!fetched) return null;
    const digest = fetched.digest as Digest;
    this.#later(`${repository}@${digest}`, async () => {
      // Clients ask for the blobs right after the manifest: let their requests start the
      // streaming downloads, which the copy then waits for instead of fetching again.
      await new Promise((resolve) => setTimeout(resolve, BACKGROUND_DELAY_MS));
      const copied = await copier.manifest(route.upstreamRepository, repository, digest, {
        tag: reference.kind === "tag" ? reference.tag : undefined,
        platforms: mirror.platforms,
        fetched,
      });
      await this.#attachments(route, repository, {
        digest: copied.digest,
        mediaType: copied.mediaType,
      });
    });
    return {
      digest,
      mediaType: fetched.mediaType,
      size: fetched.bytes.length,
      content: fetched.bytes as Uint8Array<ArrayBuffer>,
    };
  }

  async blobSize(repository: string, digest: Digest): Promise<number | null> {
    const route = this.#route(repository);
    if (!route) return null;
    const { client } = await this.#connect(route.upstream);
    const size = await client.blobSize(route.upstreamRepository, digest)
      .catch((err) => this.#unavailable(err));
    return size ?? null;
  }

  async openBlob(repository: string, digest: Digest): Promise<ReadableStream<Uint8Array> | null> {
    const route = this.#route(repository);
    if (!route) return null;
    const { client, copier } = await this.#connect(route.upstream);
    const pending = copier.pending(repository, digest);
    if (pending) {
      await pending;
      return null;
    }
    // Claimed before the first await, so concurrent misses find it and wait.
    const done = Promise.withResolvers<void>();
    copier.track(repository, digest, done.promise);
    let upstream: ReadableStream<Uint8Array>;
    try {
      upstream = await client.openBlob(route.upstreamRepository, digest);
    } catch (err) {
      done.resolve();
      if (err instanceof RegistryClientError && err.status === 404) return null;
      return this.#unavailable(err);
    }
    return this.#tee(repository, digest, upstream, done);
  }

  /**
   * The client's stream, fed chunk by chunk from the upstream; each chunk is first handed to
   * the upload that stores the blob, so the slower side sets the pace and memory stays bounded.
   * A client that leaves early does not stop the download; a wrong digest fails both sides.
   */
  #tee(
    repository: string,
    digest: Digest,
    upstream: ReadableStream<Uint8Array>,
    done: PromiseWithResolvers<void>,
  ): ReadableStream<Uint8Array> {
    const { registry, log } = this.#deps;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const stored = (async () => {
      const { id } = await registry.uploads.start(repository);
      try {
        await registry.uploads.complete(repository, id, digest, { body: readable });
      } catch (err) {
        await registry.uploads.cancel(repository, id).catch(() => {});
        log.warn("pull-through blob not stored", { repository, digest, error: String(err) });
        throw err;
      }
    })();
    stored.then(done.resolve, done.reject);
    this.#background.add(stored.catch(() => {}));

    const reader = upstream.getReader();
    let storing = true;
    const next = async () => {
      const result = await reader.read();
      if (storing) {
        try {
          if (result.done) await writer.close();
          else await writer.write(result.value);
        } catch {
          storing = false; // storage gave up (e.g. quota); the client still gets its bytes
        }
      }
      return result;
    };
    const fail = (err: unknown) => {
      if (storing) writer.abort(err).catch(() => {});
      storing = false;
    };
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          fail(err);
          controller.error(err);
        }
      },
      cancel: () => {
        this.#later(`${repository}@${digest} after the client left`, async () => {
          try {
            while (!(await next()).done) { /* keep storing */ }
          } catch (err) {
            fail(err);
          }
        });
      },
    });
  }

  /** Runs work after the answer, logging failures; `close()` waits for it. */
  #later(what: string, work: () => Promise<void>): void {
    const task = work().catch((err) =>
      this.#deps.log.warn("pull-through background copy failed", { what, error: String(err) })
    );
    this.#background.add(task);
    task.finally(() => this.#background.delete(task));
  }

  async #attachments(
    route: { upstream: Upstream; upstreamRepository: string },
    repository: string,
    subject: { digest: Digest; mediaType: string },
  ): Promise<void> {
    const { client, copier, atomic } = await this.#connect(route.upstream);
    const plugins = this.#deps.plugins;
    await copyAttachments({
      mirror: route.upstream.mirror,
      client,
      registry: this.#deps.registry,
      copier,
      upstreamRepository: route.upstreamRepository,
      repository,
      upstreamTags: new Set(await client.listTags(route.upstreamRepository)),
      atomicSupported: atomic,
      pluginRequests: plugins && ((event) => plugins.syncAttachments(event)),
      extensions: this.#deps.extensions,
    }, subject);
  }

  #unavailable(err: unknown): never {
    throw new RegistryError("UNAVAILABLE", "the pull-through upstream did not answer", {
      status: 502,
      detail: { error: (err as Error).message },
      cause: err,
    });
  }

  /** Waits for background copies, then closes the upstream connections. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#background]);
    for (const upstream of this.#upstreams) {
      const connection = await upstream.connection?.catch(() => undefined);
      connection?.client.close();
    }
  }
}
