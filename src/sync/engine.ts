/**
 * One run of one mirror: list the upstream's repositories and tags, pick the filtered set, copy
 * what changed (with signatures and every other attachment), optionally remove what the
 * upstream removed, and report counts and errors. Runs are incremental — a tag whose upstream
 * digest is already here costs one HEAD, present blobs and manifests are never fetched — and
 * resumable: anything half-copied was never made visible and is copied again.
 * @module
 */
import { type RegistryClient, RegistryClientError } from "../client/registry_client.ts";
import { repositoryMatcher } from "../config/globs.ts";
import type { Digest } from "../oci/digest.ts";
import type { AttachmentRequest, SyncCompletedEvent, SyncSubjectEvent } from "../plugins/api.ts";
import type { Registry } from "../registry/registry.ts";
import type { Logger } from "../log/logger.ts";
import { copyAttachments } from "./attachments.ts";
import { Copier, retryableCopyError, SkipError } from "./copy.ts";
import { isGlob, localRepository, selectTags } from "./filters.ts";
import { noCounts, type Outcome, type RunCounts, type SyncHistory } from "./history.ts";
import { settleAll } from "./limiter.ts";
import type { MirrorConfig } from "./schema.ts";
import { upstreamClient } from "./upstream.ts";
import { loadKeys, type MirrorKey, verifyUpstreamImage } from "./verify.ts";

/** What a run writes through and reports to. */
export interface SyncDeps {
  registry: Registry;
  log: Logger;
  /** Plugin hooks `sync.attachments` and `sync.completed` (the plugin host). */
  plugins?: {
    syncAttachments(event: SyncSubjectEvent): Promise<AttachmentRequest[]>;
    syncCompleted(event: SyncCompletedEvent): Promise<void>;
  };
  /** The local registry's HTTP handler for the signatures extension API (atomic signatures). */
  extensions?: (request: Request) => Promise<Response>;
  /** Ledger of mirrored tags (for deleteMissing); without it deleteMissing does nothing. */
  history?: SyncHistory;
}

/** Live progress of a run. */
export interface Progress {
  mirror: string;
  repository?: string;
  /** Tags handled so far and known so far (grows while repositories are listed). */
  done: number;
  total: number;
  /** Bytes received, including retried transfers. */
  bytes: number;
  startedAt: number;
}

/** Options of {@link runMirror}. */
export interface RunOptions {
  onProgress?: (progress: Progress) => void;
  /** Stops the run between images. */
  signal?: AbortSignal;
}

/** What a run did. */
export interface RunReport extends RunCounts {
  mirror: string;
  outcome: Exclude<Outcome, "running" | "interrupted">;
  errors: string[];
  startedAt: number;
  endedAt: number;
}

/**
 * Runs `mirror` once.
 *
 * @example
 * ```ts
 * const report = await runMirror({ registry, log }, config.mirrors[0]);
 * console.log(report.outcome, report.images, report.bytes);
 * ```
 */
export async function runMirror(
  deps: SyncDeps,
  mirror: MirrorConfig,
  options: RunOptions = {},
): Promise<RunReport> {
  const log = deps.log.with({ mirror: mirror.name });
  const startedAt = Date.now();
  const counts = noCounts();
  const errors: string[] = [];
  const progress: Progress = { mirror: mirror.name, done: 0, total: 0, bytes: 0, startedAt };
  const report = () => options.onProgress?.({ ...progress });
  const fail = (where: string, err: unknown) => {
    const message = `${where}: ${(err as Error).message ?? String(err)}`;
    errors.push(message);
    log.warn("sync error", { error: message });
  };

  let client: RegistryClient;
  const state: { copier?: Copier } = {};
  try {
    client = await upstreamClient(mirror, (retry) => {
      counts.retries++;
      log.debug("retry", { ...retry });
    });
  } catch (err) {
    fail("setup", err);
    return await finish();
  }
  const copier = new Copier({
    client,
    registry: deps.registry,
    concurrency: mirror.concurrency,
    retry: {
      attempts: mirror.retries.attempts,
      delay: mirror.retries.delay,
      maxDelay: mirror.retries.maxDelay,
      retryable: retryableCopyError,
      onRetry: (what, err, attempt) => {
        counts.retries++;
        log.info("retrying", { what, attempt, error: String((err as Error).message ?? err) });
      },
    },
    onBytes: (n) => {
      progress.bytes += n;
      report();
    },
  });
  state.copier = copier;

  try {
    let atomicSupported = false;
    let keys: MirrorKey[] = [];
    let repositories: string[];
    try {
      const headers = await client.ping();
      atomicSupported = headers.get("x-registry-supports-signatures") === "1";
      if (mirror.onlyVerified) keys = await loadKeys(mirror.keys);
      repositories = await upstreamRepositories(client, mirror);
    } catch (err) {
      fail("upstream", err);
      return await finish();
    }
    log.info("sync started", { repositories: repositories.length });
    const localNames = new Set<string>();
    for (const upstreamRepository of repositories) {
      if (options.signal?.aborted) break;
      const repository = localRepository(upstreamRepository, mirror.destination);
      localNames.add(repository);
      progress.repository = repository;
      await syncRepository(copier, upstreamRepository, repository, atomicSupported, keys);
    }
    if (mirror.deleteMissing && !options.signal?.aborted && deps.history) {
      // Repositories gone from the upstream (or from the config) lose the mirror's tags too.
      for (const repository of await deps.history.mirroredRepositories(mirror.name)) {
        if (!localNames.has(repository)) await deleteMissing(repository, new Set());
      }
    }
  } finally {
    client.close();
  }
  return await finish();

  async function syncRepository(
    copier: Copier,
    upstreamRepository: string,
    repository: string,
    atomicSupported: boolean,
    keys: MirrorKey[],
  ) {
    let tags: string[];
    try {
      tags = await client.listTags(upstreamRepository);
    } catch (err) {
      if (err instanceof RegistryClientError && err.status === 404) {
        fail(upstreamRepository, new Error("repository not found upstream"));
        if (mirror.deleteMissing) await deleteMissing(repository, new Set());
      } else {
        fail(upstreamRepository, err);
      }
      return;
    }
    const upstreamTags = new Set(tags);
    const selected = selectTags(tags, mirror.tags);
    progress.total += selected.length;
    report();
    // Tags this run vouches for: selected tags and the companion tags that followed them.
    const kept = new Set<string>();
    const record = async (tag: string, digest: Digest) => {
      kept.add(tag);
      await deps.history?.recordTag(mirror.name, repository, tag, digest);
    };
    const attachmentContext = {
      mirror,
      client: client,
      registry: deps.registry,
      copier,
      upstreamRepository,
      repository,
      upstreamTags,
      atomicSupported,
      pluginRequests: deps.plugins && ((e: SyncSubjectEvent) => deps.plugins!.syncAttachments(e)),
      extensions: deps.extensions,
      onTag: record,
    };
    let failedTags = 0;
    await settleAll(selected, mirror.concurrency, async (tag) => {
      if (options.signal?.aborted) return;
      const where = `${upstreamRepository}:${tag}`;
      try {
        const info = await client.headManifest(upstreamRepository, tag);
        if (!info) throw new Error("tag vanished upstream");
        const present = await deps.registry.metadata.resolveTag(repository, tag);
        let subjects: { digest: Digest; mediaType: string }[];
        if (present === info.digest) {
          counts.unchanged++;
          await record(tag, info.digest as Digest);
          subjects = [{ digest: info.digest as Digest, mediaType: info.mediaType }];
        } else {
          if (mirror.onlyVerified) {
            const verdict = await verifyUpstreamImage(
              client,
              upstreamRepository,
              info.digest,
              keys,
            );
            if (!verdict.ok) {
              counts.skipped++;
              // Keep what an earlier verified run copied; never move the tag to unverified content.
              if (present) kept.add(tag);
              log.info("not verified, skipped", { tag: where, reason: verdict.reason });
              return;
            }
          }
          const copied = await copier.manifest(upstreamRepository, repository, info.digest, {
            tag,
            platforms: mirror.platforms,
          });
          counts.images++;
          await record(tag, copied.digest);
          // A rewritten index has a new digest: upstream signatures of the index do not apply.
          subjects = [
            ...(copied.filtered ? [] : [{ digest: copied.digest, mediaType: copied.mediaType }]),
            ...copied.children.map((digest) => ({ digest, mediaType: "" })),
          ];
        }
        try {
          for (const subject of subjects) {
            counts.attachments += await copyAttachments(attachmentContext, subject);
          }
        } catch (err) {
          fail(`${where} attachments`, err);
        }
      } catch (err) {
        if (err instanceof SkipError) {
          counts.skipped++;
          log.info("skipped", { tag: where, reason: err.message });
        } else {
          failedTags++;
          // A tag that failed this time keeps what it had.
          kept.add(tag);
          fail(where, err);
        }
      } finally {
        progress.done++;
        report();
      }
    });
    if (mirror.deleteMissing && !options.signal?.aborted) {
      await deleteMissing(repository, kept);
    }
    if (failedTags > 0) log.warn("repository incomplete", { repository, failed: failedTags });
  }

  /** Removes tags the mirror wrote earlier and no longer vouches for (if not moved since). */
  async function deleteMissing(repository: string, kept: Set<string>) {
    const history = deps.history;
    if (!history) return;
    for (const [tag, digest] of await history.mirroredTags(mirror.name, repository)) {
      if (kept.has(tag)) continue;
      try {
        if (await deps.registry.metadata.resolveTag(repository, tag) === digest) {
          await deps.registry.manifests.delete(repository, { kind: "tag", tag });
          counts.deleted++;
          log.info("deleted, gone upstream", { repository, tag });
        }
        await history.forgetTag(mirror.name, repository, tag);
      } catch (err) {
        fail(`${repository}:${tag} delete`, err);
      }
    }
  }

  async function finish(): Promise<RunReport> {
    counts.blobs = state.copier?.stats.blobs ?? 0;
    counts.bytes = state.copier?.stats.bytes ?? 0;
    const succeeded = counts.images + counts.unchanged;
    const outcome = errors.length === 0 ? "success" : succeeded > 0 ? "partial" : "failed";
    const endedAt = Date.now();
    log.info("sync finished", {
      outcome,
      ...counts,
      errors: errors.length,
      ms: endedAt - startedAt,
    });
    await deps.plugins?.syncCompleted({
      mirror: mirror.name,
      outcome,
      images: counts.images,
      bytes: counts.bytes,
      errors,
    });
    return { mirror: mirror.name, outcome, ...counts, errors, startedAt, endedAt };
  }
}

/** The upstream repositories a mirror names: explicit entries, plus catalog entries matching globs. */
async function upstreamRepositories(
  client: { listCatalog(): Promise<string[]> },
  mirror: MirrorConfig,
): Promise<string[]> {
  const explicit = mirror.repositories.filter((entry) => !isGlob(entry));
  const globs = mirror.repositories.filter(isGlob);
  const names = new Set(explicit);
  if (globs.length > 0) {
    const matches = repositoryMatcher(globs);
    for (const name of await client.listCatalog()) if (matches(name)) names.add(name);
  }
  return [...names].sort();
}
