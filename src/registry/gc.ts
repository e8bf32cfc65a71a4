/**
 * Online garbage collection. Per repository it keeps what tags reach (indexes and their
 * children), the referrers and attachment tags (`sha256-<hex>.sig|.att|.sbom`, fallback indexes)
 * of kept manifests — signatures live and die with their subject — and anything younger than the
 * grace period; then it removes untagged manifests, unused blob links, orphaned bytes and idle
 * upload sessions. Every removal is a guarded statement that re-checks its condition, so pushes
 * arriving meanwhile are never broken.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { RepositorySnapshot } from "../metadata/metadata_store.ts";
import type { Registry } from "./registry.ts";
import { ATTACHMENT_TAG, type RetentionRule, tagsToDrop } from "./retention.ts";

/** Options of a collection run. */
export interface GcOptions {
  /** Report what would be removed without removing anything. */
  dryRun?: boolean;
  /** Milliseconds that new content is protected. */
  gracePeriod: number;
  /** Milliseconds after which an idle upload session is removed. */
  uploadExpiry: number;
  /** Retention rules (first match per repository). */
  retention?: RetentionRule[];
  /** The clock, for tests. */
  now?: number;
}

/** What a run removed (or would remove, on a dry run). */
export interface GcReport {
  dryRun: boolean;
  tagsDeleted: { repository: string; tag: string; reason: "retention" | "subject gone" }[];
  manifestsDeleted: { repository: string; digest: Digest }[];
  blobLinksRemoved: number;
  blobsDeleted: number;
  bytesFreed: number;
  uploadsExpired: number;
  durationMs: number;
}

/** Runs one collection over every repository. */
export async function collectGarbage(registry: Registry, options: GcOptions): Promise<GcReport> {
  const started = performance.now();
  // The metadata's clock: with a shared database, the one every process stamps its writes with.
  const now = options.now ?? registry.metadata.now();
  const cutoff = now - options.gracePeriod;
  const dryRun = options.dryRun ?? false;
  const { metadata, store } = registry;
  const report: GcReport = {
    dryRun,
    tagsDeleted: [],
    manifestsDeleted: [],
    blobLinksRemoved: 0,
    blobsDeleted: 0,
    bytesFreed: 0,
    uploadsExpired: 0,
    durationMs: 0,
  };
  const doomedBlobBytes = new Map<Digest, number>();

  for (const repository of await metadata.allRepositories()) {
    const rule = options.retention?.find((r) => r.matches(repository));
    const untaggedCutoff = rule?.untaggedAfter !== undefined ? now - rule.untaggedAfter : cutoff;
    let snapshot = await metadata.snapshot(repository);

    // Retention first: it only untags; what the tags kept alive is then collected below.
    if (rule) {
      for (const tag of tagsToDrop(snapshot.tags, rule)) {
        if (dryRun || await metadata.deleteTagIf(repository, tag.name, tag.digest, now + 1)) {
          report.tagsDeleted.push({ repository, tag: tag.name, reason: "retention" });
        }
      }
      if (!dryRun) snapshot = await metadata.snapshot(repository);
      else snapshot = withoutTags(snapshot, report, repository);
    }

    const live = liveManifests(snapshot, untaggedCutoff);
    for (const tag of snapshot.tags) {
      const attachment = ATTACHMENT_TAG.exec(tag.name);
      if (!attachment || live.has(`sha256:${attachment[2]}` as Digest)) continue;
      if (tag.updatedAt >= cutoff) continue;
      if (dryRun || await metadata.deleteTagIf(repository, tag.name, tag.digest, cutoff)) {
        report.tagsDeleted.push({ repository, tag: tag.name, reason: "subject gone" });
      }
    }
    // Indexes before their children: a child stays while an index in the repository lists it.
    const byDepth = [...snapshot.manifests].sort((a, b) => b.children.length - a.children.length);
    for (const manifest of byDepth) {
      if (live.has(manifest.digest) || manifest.pushedAt >= untaggedCutoff) continue;
      if (dryRun) {
        report.manifestsDeleted.push({ repository, digest: manifest.digest });
      } else if (
        await metadata.deleteUntaggedManifest(repository, manifest.digest, untaggedCutoff)
      ) {
        report.manifestsDeleted.push({ repository, digest: manifest.digest });
        await registry.manifests.forgotten(repository, manifest.digest);
      }
    }
    const used = new Set<Digest>();
    for (const manifest of snapshot.manifests) {
      if (live.has(manifest.digest) || manifest.pushedAt >= untaggedCutoff) {
        for (const blob of manifest.blobs) used.add(blob);
      }
    }
    for (const link of snapshot.links) {
      if (used.has(link.digest) || link.linkedAt >= cutoff) continue;
      if (dryRun || await metadata.unlinkUnusedBlob(repository, link.digest, cutoff)) {
        report.blobLinksRemoved++;
        if (dryRun) doomedBlobBytes.set(link.digest, link.size);
      }
    }
  }

  if (!dryRun) await metadata.deleteOrphanManifests();
  for (const blob of await metadata.orphanBlobs(cutoff)) {
    doomedBlobBytes.set(blob.digest, blob.size);
  }
  for (const [digest, size] of doomedBlobBytes) {
    if (dryRun) {
      // Only count bytes no other repository still links.
      if ((await metadata.repositoriesWithBlob(digest)).length <= 1) {
        report.blobsDeleted++;
        report.bytesFreed += size;
      }
      continue;
    }
    await registry.blobLocks.run(digest, async () => {
      if (!await metadata.deleteBlobIfOrphan(digest)) return;
      await store.delete(digest);
      report.blobsDeleted++;
      report.bytesFreed += size;
    });
  }

  // Bytes on disk that the metadata never recorded (a crash between rename and link).
  for await (const blob of store.listBlobs()) {
    if (blob.modifiedAt >= cutoff || doomedBlobBytes.has(blob.digest)) continue;
    await registry.blobLocks.run(blob.digest, async () => {
      if (await metadata.blobKnown(blob.digest)) return;
      if (!dryRun) await store.delete(blob.digest);
      report.blobsDeleted++;
      report.bytesFreed += blob.size;
    });
  }

  const expiry = now - options.uploadExpiry;
  const known = new Set<string>();
  for (const upload of await metadata.idleUploads(expiry)) {
    known.add(upload.id);
    if (!dryRun) await registry.uploads.cancel(upload.repository, upload.id);
    report.uploadsExpired++;
  }
  for (const id of await store.listUploads()) {
    if (known.has(id) || await metadata.getUpload(id)) continue;
    const state = await store.uploadState(id).catch(() => null);
    if (!state || (state.modifiedAt ?? now) >= expiry) continue;
    if (!dryRun) await store.cancelUpload(id);
    report.uploadsExpired++;
  }

  report.durationMs = Math.round(performance.now() - started);
  return report;
}

/**
 * Manifests kept alive: tagged ones (attachment tags count only when their subject lives),
 * recent ones, the children of live indexes, and the referrers of live manifests.
 */
export function liveManifests(snapshot: RepositorySnapshot, cutoff: number): Set<Digest> {
  const byDigest = new Map(snapshot.manifests.map((m) => [m.digest, m]));
  const live = new Set<Digest>();
  const queue: Digest[] = [];
  const keep = (digest: Digest) => {
    if (live.has(digest) || !byDigest.has(digest)) return;
    live.add(digest);
    queue.push(digest);
  };
  for (const tag of snapshot.tags) if (!ATTACHMENT_TAG.test(tag.name)) keep(tag.digest);
  for (const manifest of snapshot.manifests) if (manifest.pushedAt >= cutoff) keep(manifest.digest);
  const referrers = new Map<Digest, Digest[]>();
  for (const manifest of snapshot.manifests) {
    if (manifest.subject) {
      referrers.set(manifest.subject, [...referrers.get(manifest.subject) ?? [], manifest.digest]);
    }
  }
  const attachments = new Map<Digest, Digest[]>();
  for (const tag of snapshot.tags) {
    const match = ATTACHMENT_TAG.exec(tag.name);
    if (!match) continue;
    const subject = `sha256:${match[2]}` as Digest;
    attachments.set(subject, [...attachments.get(subject) ?? [], tag.digest]);
  }
  while (queue.length > 0) {
    const digest = queue.pop()!;
    for (const child of byDigest.get(digest)!.children) keep(child);
    for (const referrer of referrers.get(digest) ?? []) keep(referrer);
    for (const attachment of attachments.get(digest) ?? []) keep(attachment);
  }
  return live;
}

function withoutTags(
  snapshot: RepositorySnapshot,
  report: GcReport,
  repository: string,
): RepositorySnapshot {
  const dropped = new Set(
    report.tagsDeleted.filter((t) => t.repository === repository).map((t) => t.tag),
  );
  return { ...snapshot, tags: snapshot.tags.filter((t) => !dropped.has(t.name)) };
}
