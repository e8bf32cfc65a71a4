/**
 * Pull-through (on-demand mirroring): a pull that misses in a repository a `pullThrough` mirror
 * covers is answered from the upstream. A manifest is fetched (verified) and served, and stored
 * in the background with its blobs and attachments; a blob (or the range asked for) is streamed
 * to the client while the whole blob is stored, fetched once however many clients ask at the
 * same time. A tag pull-through wrote is checked upstream again once its `tagTtl` has passed,
 * and moved with a compare-and-set. A config reload builds a new instance; the old one finishes
 * what it started, then closes.
 * @module
 */
import type { FetchedManifest, RegistryClient } from "../client/registry_client.ts";
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
import type { ByteRange } from "../storage/blob_store.ts";
import { copyAttachments } from "./attachments.ts";
import { teeBlob } from "./blob_tee.ts";
import { type CopiedManifest, Copier, retryableCopyError } from "./copy.ts";
import { isGlob, selectTags } from "./filters.ts";
import { openPulledTags, type PulledTags } from "./pulled_tags.ts";
import { sliceStream } from "./range_stream.ts";
import type { MirrorConfig } from "./schema.ts";
import { upstreamClient } from "./upstream.ts";

/** How long the background copy of a pulled manifest waits for the client's blob requests. */
const BACKGROUND_DELAY_MS = 1000;

/**
 * Longest a pull waits for the upstream check of a stale tag; past it the local copy is served
 * and the check goes on (an upstream that hangs costs one wait, not the mirror's `timeout`).
 */
const CHECK_WAIT_MS = 5000;

/** Tags whose freshness a process remembers before it forgets them all. */
const MAX_REMEMBERED = 10_000;

/** What pull-through needs from the process. */
export interface PullThroughDeps {
  registry: Registry;
  /** The data directory: the ledger of pulled tags is `sync.db` there without PostgreSQL. */
  dataDir: string;
  log: Logger;
  plugins?: PluginHost;
  /** The local signatures extension API, for atomic signatures. */
  extensions?: (request: Request) => Promise<Response>;
}

interface Upstream {
  mirror: MirrorConfig;
  /** The tags' time-to-live. */
  tagTtl: number;
  matches: (upstreamRepository: string) => boolean;
  connection?: Promise<{ client: RegistryClient; copier: Copier; atomic: boolean }>;
}

interface Route {
  upstream: Upstream;
  upstreamRepository: string;
}

/** The pull-through source of every mirror with `pullThrough` on. */
export class PullThrough implements PullThroughSource {
  readonly #deps: PullThroughDeps;
  readonly #upstreams: Upstream[];
  readonly #background = new Set<Promise<unknown>>();
  #ledger?: Promise<PulledTags>;
  /** Upstream checks under way, by `repository:tag`: concurrent pulls share one. */
  readonly #checks = new Map<string, Promise<StoredManifest>>();
  /** Tags known fresh (or not pull-through's) at a local digest, until a time. */
  readonly #fresh = new Map<string, { digest: Digest; until: number }>();
  /** Manifests being stored in the background, by `repository@digest`: served meanwhile. */
  readonly #storing = new Map<string, StoredManifest>();
  /** Tags moved upstream whose new manifest is being stored: served meanwhile. */
  readonly #moving = new Map<string, { from: Digest; manifest: StoredManifest }>();

  constructor(mirrors: MirrorConfig[], deps: PullThroughDeps) {
    this.#deps = deps;
    this.#upstreams = mirrors.filter((m) => m.pullThrough).map((mirror) => {
      const globs = mirror.repositories.filter(isGlob);
      const names = new Set(mirror.repositories.filter((r) => !isGlob(r)));
      const glob = globs.length ? repositoryMatcher(globs) : () => false;
      const tagTtl = mirror.pullThrough ? mirror.pullThrough.tagTtl : 0;
      return { mirror, tagTtl, matches: (name: string) => names.has(name) || glob(name) };
    });
  }

  /** True when any mirror serves pulls on demand. */
  get enabled(): boolean {
    return this.#upstreams.length > 0;
  }

  /** The mirror covering a local repository, and the upstream name it maps to. */
  #route(repository: string): Route | null {
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

  manifest(repository: string, reference: Reference): Promise<StoredManifest | null> {
    return this.#during(this.#manifest(repository, reference));
  }

  async #manifest(repository: string, reference: Reference): Promise<StoredManifest | null> {
    const route = this.#route(repository);
    if (!route) return null;
    // A client pulls by digest what it just got by tag: served while it is being stored.
    const storing = reference.kind === "digest"
      ? this.#storing.get(`${repository}@${reference.digest}`)
      : undefined;
    if (storing) return storing;
    if (reference.kind === "tag" && !this.#tagSelected(route, reference.tag)) return null;
    const { client } = await this.#connect(route.upstream);
    const fetched = await client.getManifest(
      route.upstreamRepository,
      reference.kind === "tag" ? reference.tag : reference.digest,
    ).catch((err) => this.#unavailable(err));
    if (!fetched) return null;
    const tag = reference.kind === "tag" ? { name: reference.tag, from: null } : undefined;
    return this.#store(route, repository, fetched, tag);
  }

  #tagSelected(route: Route, tag: string): boolean {
    return selectTags([tag], route.upstream.mirror.tags).length > 0;
  }

  /**
   * Stores a fetched manifest with its blobs in the background, then points `tag` at it if the
   * tag still points where it did (`from`, null for absent) and records it in the ledger, then
   * copies its attachments. Returns the manifest to serve meanwhile.
   */
  #store(
    route: Route,
    repository: string,
    fetched: FetchedManifest,
    tag?: { name: string; from: Digest | null },
    done?: () => void,
  ): StoredManifest {
    const { mirror } = route.upstream;
    const manifest = storedManifest(fetched);
    const digest = manifest.digest;
    const key = `${repository}@${digest}`;
    this.#storing.set(key, manifest);
    this.#later(key, async () => {
      try {
        // Clients ask for the blobs right after the manifest: let their requests start the
        // streaming downloads, which the copy then waits for instead of fetching again.
        await new Promise((resolve) => setTimeout(resolve, BACKGROUND_DELAY_MS));
        const { copier } = await this.#connect(route.upstream);
        const copied = await copier.manifest(route.upstreamRepository, repository, digest, {
          platforms: mirror.platforms,
          fetched,
        });
        if (tag) await this.#moveTag(repository, tag.name, tag.from, copied);
        await this.#attachments(route, repository, {
          digest: copied.digest,
          mediaType: copied.mediaType,
        });
      } finally {
        if (this.#storing.get(key) === manifest) this.#storing.delete(key);
        done?.();
      }
    });
    return manifest;
  }

  /**
   * Points `tag` at a copied manifest unless someone (a push, a scheduled run) moved it since
   * pull-through looked (`from`), and records it as pull-through's. The move is one
   * compare-and-set in the metadata store, so a push landing meanwhile is never overwritten; a
   * tag moved meanwhile is left, and forgotten by the ledger.
   */
  async #moveTag(repository: string, tag: string, from: Digest | null, copied: CopiedManifest) {
    const { registry, log } = this.#deps;
    const ledger = await this.#openLedger();
    const current = await registry.metadata.resolveTag(repository, tag);
    let moved = current === copied.digest;
    if (!moved && current === from) {
      const stored = await registry.metadata.getManifest(repository, copied.digest);
      if (!stored) throw new Error(`${repository}@${copied.digest} vanished before tagging`);
      const pushed = await registry.manifests.put(
        repository,
        { kind: "tag", tag },
        stored.content,
        stored.mediaType,
        { ifTagAt: from },
      );
      moved = pushed.stored;
    }
    if (!moved) {
      if (from !== null) await ledger.forget(repository, tag, from);
      this.#fresh.delete(`${repository}:${tag}`);
      log.info("pull-through left a tag moved meanwhile", { repository, tag, from });
      return;
    }
    await ledger.record(repository, tag, copied.digest, copied.upstreamDigest);
    this.#fresh.delete(`${repository}:${tag}`);
    log.info("pull-through tag stored", { repository, tag, digest: copied.digest });
  }

  #openLedger(): Promise<PulledTags> {
    this.#ledger ??= openPulledTags(this.#deps.registry.metadata, this.#deps.dataDir);
    this.#ledger.catch(() => this.#ledger = undefined);
    return this.#ledger;
  }

  /**
   * The manifest to serve for a local tag: `local`, unless pull-through wrote the tag (the
   * ledger still has it at `local`'s digest), its last upstream check is `tagTtl` old, and the
   * upstream moved it since: then the upstream's manifest, stored in the background. One check
   * per tag at a time in a process, and one per `tagTtl` among processes sharing the ledger.
   * An upstream that fails or hangs (past {@link CHECK_WAIT_MS}) gets `local` served.
   */
  refreshTag(repository: string, tag: string, local: StoredManifest): Promise<StoredManifest> {
    return this.#during(this.#refreshTag(repository, tag, local));
  }

  async #refreshTag(
    repository: string,
    tag: string,
    local: StoredManifest,
  ): Promise<StoredManifest> {
    const route = this.#route(repository);
    if (!route || !this.#tagSelected(route, tag)) return local;
    const key = `${repository}:${tag}`;
    const moving = this.#moving.get(key);
    if (moving?.from === local.digest) return moving.manifest;
    const fresh = this.#fresh.get(key);
    if (fresh?.digest === local.digest && fresh.until > Date.now()) return local;
    let check = this.#checks.get(key);
    if (!check) {
      check = this.#check(route, repository, tag, local);
      this.#checks.set(key, check);
      this.#track(check.finally(() => this.#checks.delete(key)));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<StoredManifest>((resolve) => {
      timer = setTimeout(() => {
        this.#deps.log.warn("pull-through upstream check is slow, serving the local copy", {
          repository,
          tag,
        });
        resolve(local);
      }, CHECK_WAIT_MS);
    });
    try {
      return await Promise.race([check, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #check(
    route: Route,
    repository: string,
    tag: string,
    local: StoredManifest,
  ): Promise<StoredManifest> {
    const { log } = this.#deps;
    const ttl = route.upstream.tagTtl;
    const key = `${repository}:${tag}`;
    try {
      const ledger = await this.#openLedger();
      const pulled = await ledger.get(repository, tag);
      if (!pulled || pulled.digest !== local.digest) {
        this.#remember(key, local.digest, ttl); // pushed here or moved by a run: not ours
        return local;
      }
      if (pulled.age < ttl) {
        this.#remember(key, local.digest, ttl - pulled.age);
        return local;
      }
      // Another process may have just taken the check: it marked the tag checked now.
      if (!await ledger.claim(repository, tag, local.digest, ttl)) {
        this.#remember(key, local.digest, ttl);
        return local;
      }
      const { client } = await this.#connect(route.upstream);
      const head = await client.headManifest(route.upstreamRepository, tag);
      if (!head) {
        log.warn("pull-through tag gone upstream, serving the local copy", { repository, tag });
        this.#remember(key, local.digest, ttl);
        return local;
      }
      if (head.digest === pulled.upstreamDigest) {
        this.#remember(key, local.digest, ttl);
        return local;
      }
      const fetched = await client.getManifest(route.upstreamRepository, head.digest);
      if (!fetched) throw new Error(`${route.upstreamRepository}@${head.digest} not found`);
      log.info("pull-through tag moved upstream", {
        repository,
        tag,
        from: local.digest,
        to: head.digest,
      });
      const manifest = this.#store(
        route,
        repository,
        fetched,
        { name: tag, from: local.digest },
        () => {
          if (this.#moving.get(key)?.manifest === manifest) this.#moving.delete(key);
        },
      );
      this.#moving.set(key, { from: local.digest, manifest });
      return manifest;
    } catch (err) {
      log.warn("pull-through upstream check failed, serving the local copy", {
        repository,
        tag,
        error: String(err),
      });
      this.#remember(key, local.digest, ttl);
      return local;
    }
  }

  /** Skips checks of `key` at `digest` for `ms`. */
  #remember(key: string, digest: Digest, ms: number): void {
    if (ms <= 0) return;
    if (this.#fresh.size >= MAX_REMEMBERED) this.#fresh.clear();
    this.#fresh.set(key, { digest, until: Date.now() + ms });
  }

  blobSize(repository: string, digest: Digest): Promise<number | null> {
    return this.#during(this.#blobSize(repository, digest));
  }

  async #blobSize(repository: string, digest: Digest): Promise<number | null> {
    const route = this.#route(repository);
    if (!route) return null;
    const { client } = await this.#connect(route.upstream);
    const size = await client.blobSize(route.upstreamRepository, digest)
      .catch((err) => this.#unavailable(err));
    return size ?? null;
  }

  openBlob(
    repository: string,
    digest: Digest,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array> | null> {
    return this.#during(this.#openBlob(repository, digest, range));
  }

  async #openBlob(
    repository: string,
    digest: Digest,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array> | null> {
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
    const { registry, log } = this.#deps;
    // A download that ended since the caller looked: it is local now.
    if (await registry.metadata.linkedBlobSize(repository, digest) !== null) {
      done.resolve();
      return null;
    }
    let upstream: ReadableStream<Uint8Array>;
    try {
      upstream = await client.openBlob(route.upstreamRepository, digest);
    } catch (err) {
      done.resolve();
      if (err instanceof RegistryClientError && err.status === 404) return null;
      return this.#unavailable(err);
    }
    const { body, stored } = teeBlob({
      registry,
      log,
      repository,
      digest,
      upstream,
      later: (what, work) => this.#later(what, work),
    });
    stored.then(done.resolve, done.reject);
    this.#track(stored);
    return range ? sliceStream(body, range) : body;
  }

  /** Runs work after the answer, logging failures; `close()` waits for it. */
  #later(what: string, work: () => Promise<void>): void {
    const task = work().catch((err) =>
      this.#deps.log.warn("pull-through background copy failed", { what, error: String(err) })
    );
    this.#track(task);
  }

  /** A call under way: `close()` waits for it (a reload closes this instance meanwhile). */
  #during<T>(work: Promise<T>): Promise<T> {
    this.#track(work);
    return work;
  }

  /** Keeps `work` for `close()` to wait for until it settles. */
  #track(work: Promise<unknown>): void {
    const settled = work.then(() => {}, () => {});
    this.#background.add(settled);
    settled.finally(() => this.#background.delete(settled));
  }

  async #attachments(
    route: Route,
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

  /**
   * Waits for calls under way and background copies (downloads finish on this instance's
   * upstreams), then closes the upstream connections and the ledger.
   */
  async close(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
    for (const upstream of this.#upstreams) {
      const connection = await upstream.connection?.catch(() => undefined);
      connection?.client.close();
    }
    (await this.#ledger?.catch(() => undefined))?.close();
  }
}

function storedManifest(fetched: FetchedManifest): StoredManifest {
  return {
    digest: fetched.digest as Digest,
    mediaType: fetched.mediaType,
    size: fetched.bytes.length,
    content: fetched.bytes as Uint8Array<ArrayBuffer>,
  };
}
