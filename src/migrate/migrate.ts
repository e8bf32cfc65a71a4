/**
 * `wharf migrate`: copies every repository of one registry's stores into another registry —
 * blobs streamed into the target's upload path (re-hashed there), then manifests and tags
 * through the target's registry service, so its checks and plugins run as for a push, then the
 * rows of the plugin tables that hold data found nowhere else (`./plugin_rows.ts`). What the
 * target already holds is skipped, so a second run finishes what an interrupted one left.
 * @module
 */
import { type Digest, digestOf, parseDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Reference } from "../oci/names.ts";
import type { MetadataStore, RepositorySnapshot } from "../metadata/metadata_store.ts";
import { ALLOW_ALL } from "../registry/access.ts";
import type { Registry } from "../registry/registry.ts";
import type { BlobStore } from "../storage/blob_store.ts";
import type { PluginStore } from "../plugins/database.ts";
import type { PluginHost } from "../plugins/host.ts";
import { formatBytes } from "../config/units.ts";
import { copyBlob } from "./blob_copy.ts";
import { manifestOrder, type ManifestStep } from "./plan.ts";
import { carryPluginRows } from "./plugin_rows.ts";
import {
  describeFailure,
  emptyReport,
  type MigrationFailure,
  type MigrationReport,
} from "./report.ts";

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Look and count, write nothing. */
  dryRun?: boolean;
  /** Only repositories for which this is true (all by default). */
  repositories?: (name: string) => boolean;
  /** Blobs (and then repositories) handled at once. Default 4. */
  jobs?: number;
  /** Bytes per upload append; an interrupted blob resumes from its last whole chunk. 64 MiB. */
  chunkSize?: number;
  /** Names of the stores for the report. */
  describe?: { source: string; target: string };
  /** Progress lines (one per blob copied, per chunk of a large blob, per repository). */
  onProgress?: (line: string) => void;
}

/** The source end: its stores, read only. */
export interface MigrationSource {
  store: BlobStore;
  metadata: MetadataStore;
  /** Its plugins' database; null or absent when it has none (no plugin rows to carry). */
  plugins?: PluginStore | null;
}

/** The target end: its registry service and, to carry plugin rows, its loaded plugins. */
export interface MigrationTarget {
  registry: Registry;
  plugins?: PluginHost;
}

const DEFAULT_CHUNK = 64 << 20;

/** A blob to migrate: its size and the selected repositories that link it. */
interface BlobPlan {
  size: number;
  repositories: string[];
}

/**
 * Copies the source's repositories into the target registry and reports what it did. Failures
 * of single blobs, manifests or tags are reported, not thrown; an unreachable store throws.
 */
export async function migrate(
  source: MigrationSource,
  { registry: target, plugins: targetPlugins }: MigrationTarget,
  options: MigrateOptions = {},
): Promise<MigrationReport> {
  const started = performance.now();
  const dryRun = options.dryRun ?? false;
  const report = emptyReport(
    options.describe?.source ?? "source",
    options.describe?.target ?? "target",
    dryRun,
  );
  const progress = options.onProgress ?? (() => {});
  const jobs = Math.max(1, options.jobs ?? 4);
  const fail = (failure: MigrationFailure) => {
    report.failures.push(failure);
    progress(`failed: ${describeFailure(failure)}`);
  };

  report.uploadsNotMigrated = (await source.store.listUploads()).length;
  const snapshots = new Map<string, RepositorySnapshot>();
  for (const name of await source.metadata.allRepositories()) {
    if (options.repositories && !options.repositories(name)) continue;
    const snapshot = await source.metadata.snapshot(name);
    if (snapshot.manifests.length === 0 && snapshot.links.length === 0) continue;
    snapshots.set(name, snapshot);
  }
  report.repositories = snapshots.size;

  const blobs = new Map<Digest, BlobPlan>();
  for (const [name, snapshot] of snapshots) {
    for (const link of snapshot.links) {
      const plan = blobs.get(link.digest) ?? { size: link.size, repositories: [] };
      plan.repositories.push(name);
      blobs.set(link.digest, plan);
    }
  }
  const failedBlobs = new Map<Digest, string>();
  let blobsDone = 0;
  await pool([...blobs], jobs, async ([digest, plan]) => {
    try {
      const copied = await migrateBlob(digest, plan);
      blobsDone++;
      if (copied) {
        progress(
          `${dryRun ? "would copy" : "copied"} ${digest} (${formatBytes(plan.size)}) ` +
            `[${blobsDone}/${blobs.size}]`,
        );
      }
    } catch (err) {
      blobsDone++;
      if (isUnavailable(err)) throw err;
      const reason = blobFailureReason(err);
      failedBlobs.set(digest, reason);
      report.blobs.failed++;
      fail({ kind: "blob", repository: plan.repositories[0], digest, reason });
    }
  });

  /** Copies or links one blob where the target lacks it; true when bytes were sent. */
  async function migrateBlob(digest: Digest, plan: BlobPlan): Promise<boolean> {
    const stored = await target.store.stat(digest);
    if (stored && stored.size !== plan.size) {
      throw new Error(
        `the target store holds ${stored.size} bytes under this digest, the source ${plan.size}`,
      );
    }
    const missing: string[] = [];
    for (const repository of plan.repositories) {
      if (await target.metadata.linkedBlobSize(repository, digest) === null) {
        missing.push(repository);
      }
    }
    const holders = stored ? await target.metadata.repositoriesWithBlob(digest) : [];
    let from = holders[0];
    const send = from === undefined;
    if (send) {
      // Not in the target (or its bytes are there but nothing links them): send the bytes.
      const into = missing[0] ?? plan.repositories[0];
      const held = await source.store.stat(digest);
      if (!held) throw new Error("missing from the source blob store");
      if (held.size !== plan.size) {
        throw new Error(`the source file has ${held.size} bytes, the metadata says ${plan.size}`);
      }
      if (!dryRun) {
        const big = plan.size > (options.chunkSize ?? DEFAULT_CHUNK);
        const result = await copyBlob(source.store, target, into, digest, plan.size, {
          chunkSize: options.chunkSize ?? DEFAULT_CHUNK,
          onChunk: big
            ? (done, total) => progress(`  ${digest} ${formatBytes(done)} of ${formatBytes(total)}`)
            : undefined,
          onResume: (offset) => progress(`resuming ${digest} at ${formatBytes(offset)}`),
        });
        report.bytesCopied += result.bytesSent;
      } else {
        report.bytesCopied += plan.size;
      }
      report.blobs.copied++;
      from = into;
    } else {
      report.blobs.present++;
    }
    for (const repository of missing) {
      if (repository === from) continue;
      if (!dryRun && !await target.uploads.mount(repository, digest, from, ALLOW_ALL)) {
        throw new Error(`could not link it into ${repository} (gone from ${from} meanwhile)`);
      }
      report.blobs.links++;
    }
    return send;
  }

  await pool([...snapshots], jobs, async ([repository, snapshot]) => {
    const linked = new Set(snapshot.links.map((l) => l.digest));
    const failed = new Set<Digest>();
    for (const step of manifestOrder(snapshot)) {
      const blocked = blocker(step, linked, failed);
      if (blocked !== null) failManifest(repository, step, blocked);
      if (blocked !== null || !await writeManifest(repository, step)) failed.add(step.digest);
    }
    progress(`repository ${repository} done`);
  });

  /** Why a manifest cannot be written: a blob or child that did not make it, or null. */
  function blocker(step: ManifestStep, linked: Set<Digest>, failed: Set<Digest>): string | null {
    const badBlob = step.blobs.find((b) => failedBlobs.has(b));
    if (badBlob) return `its blob ${badBlob} failed: ${failedBlobs.get(badBlob)}`;
    const unlinked = step.blobs.find((b) => !linked.has(b));
    if (unlinked) return `it references ${unlinked}, which the source repository no longer links`;
    const child = step.children.find((c) => failed.has(c));
    return child ? `its child manifest ${child} failed` : null;
  }

  /** Writes one manifest and the tags on it that the target lacks; false when it failed. */
  async function writeManifest(repository: string, step: ManifestStep): Promise<boolean> {
    const stored = await source.metadata.getManifest(repository, step.digest);
    const algorithm = parseDigest(step.digest).algorithm;
    if (!stored || digestOf(stored.content, algorithm) !== step.digest) {
      const reason = stored
        ? "source manifest bytes do not match the digest"
        : "gone from the source meanwhile";
      failManifest(repository, step, reason);
      return false;
    }
    const present = await target.metadata.getManifest(repository, step.digest) !== null;
    if (present) report.manifests.present++;
    let tags: string[] = [];
    for (const tag of step.tags) {
      if (await target.metadata.resolveTag(repository, tag) === step.digest) report.tags.present++;
      else tags.push(tag);
    }
    if (algorithm !== "sha256") {
      // A push by tag hashes with sha256, so the tag would name another digest.
      for (const tag of tags) {
        failTag(repository, tag, step.digest, `tags on ${algorithm} manifests are not migrated`);
      }
      tags = [];
    }
    // A push by tag stores the manifest too; by digest only when no tag is to be written.
    const pushes: Reference[] = tags.length > 0
      ? tags.map((tag) => ({ kind: "tag", tag }))
      : present
      ? []
      : [{ kind: "digest", digest: step.digest }];
    let written = present;
    for (const reference of pushes) {
      try {
        if (!dryRun) {
          await target.manifests.put(repository, reference, stored.content, stored.mediaType);
        }
      } catch (err) {
        if (isUnavailable(err)) throw err;
        const reason = `refused by the target: ${errorText(err)}`;
        if (!written) {
          failManifest(repository, step, reason, tags);
          return false;
        }
        failTag(repository, (reference as { tag: string }).tag, step.digest, reason);
        continue;
      }
      if (!written) report.manifests.copied++;
      written = true;
      if (reference.kind === "tag") report.tags.copied++;
    }
    return true;
  }

  /** Reports a manifest as failed, and the tags on it that were to be written. */
  function failManifest(repository: string, step: ManifestStep, reason: string, tags = step.tags) {
    report.manifests.failed++;
    fail({ kind: "manifest", repository, digest: step.digest, reason });
    for (const tag of tags) failTag(repository, tag, step.digest, "its manifest failed");
  }

  function failTag(repository: string, tag: string, digest: Digest, reason: string) {
    report.tags.failed++;
    fail({ kind: "tag", repository, tag, digest, reason });
  }

  // After the manifests, which the carried rows are about.
  if (targetPlugins) {
    await carryPluginRows(source.plugins ?? null, targetPlugins, report.plugins, {
      dryRun,
      repositories: [...snapshots.keys()],
      progress,
      fail,
    });
  }

  report.durationMs = Math.round(performance.now() - started);
  report.mbPerSecond = report.bytesCopied / 1e6 / Math.max(report.durationMs / 1000, 0.001);
  return report;
}

/**
 * Runs `task` over `items` with at most `limit` in flight. The first error stops new tasks;
 * it is thrown once the tasks in flight have ended.
 */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && failure === null) {
      try {
        await task(items[next++]);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
}

/** A store that does not answer: the whole run stops (a later run resumes). */
function isUnavailable(err: unknown): boolean {
  return err instanceof RegistryError && err.code === "UNAVAILABLE";
}

function blobFailureReason(err: unknown): string {
  if (err instanceof RegistryError && err.code === "DIGEST_INVALID") {
    const actual = (err.detail as { actual?: string } | undefined)?.actual;
    return `source bytes do not match the digest${actual ? ` (they hash to ${actual})` : ""}`;
  }
  return errorText(err);
}

function errorText(err: unknown): string {
  if (err instanceof RegistryError) return `${err.code}: ${err.message}`;
  return (err as Error).message ?? String(err);
}
