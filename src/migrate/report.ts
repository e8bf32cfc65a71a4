/**
 * What `wharf migrate` did: counts of blobs, manifests and tags copied, already present and
 * failed, bytes and speed, and every failure with its reason. Printed for people and written as
 * JSON with `--report`.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { formatBytes } from "../config/units.ts";

/** Copied, already in the target, and failed. With `--dry-run`, `copied` is "would copy". */
export interface Counts {
  copied: number;
  present: number;
  failed: number;
}

/** One thing that was not migrated, and why. */
export interface MigrationFailure {
  kind: "blob" | "manifest" | "tag";
  /** The repository (for a blob: the first one linking it). */
  repository: string;
  digest?: Digest;
  tag?: string;
  reason: string;
}

/** The outcome of a migration run. */
export interface MigrationReport {
  dryRun: boolean;
  /** The stores read, e.g. `filesystem /srv/wharf + sqlite /srv/wharf/wharf.db`. */
  source: string;
  /** The stores written. */
  target: string;
  repositories: number;
  /** Distinct blobs by digest; `links` counts blob links made in further repositories. */
  blobs: Counts & { links: number };
  /** Blob bytes sent to the target in this run (resumed blobs: only what was left). */
  bytesCopied: number;
  /** Manifests per repository. */
  manifests: Counts;
  tags: Counts;
  /** Upload sessions still open in the source: not migrated, clients push those again. */
  uploadsNotMigrated: number;
  durationMs: number;
  /** Decimal megabytes of blob bytes per second of the whole run. */
  mbPerSecond: number;
  failures: MigrationFailure[];
}

/** An empty report to fill in. */
export function emptyReport(source: string, target: string, dryRun: boolean): MigrationReport {
  const counts = () => ({ copied: 0, present: 0, failed: 0 });
  return {
    dryRun,
    source,
    target,
    repositories: 0,
    blobs: { ...counts(), links: 0 },
    bytesCopied: 0,
    manifests: counts(),
    tags: counts(),
    uploadsNotMigrated: 0,
    durationMs: 0,
    mbPerSecond: 0,
    failures: [],
  };
}

/** The report as lines for a terminal: a summary, then one line per failure. */
export function formatReport(report: MigrationReport): string {
  const copied = report.dryRun ? "to copy" : "copied";
  const counts = (c: Counts) =>
    `${c.copied} ${copied}, ${c.present} already present, ${c.failed} failed`;
  const seconds = report.durationMs / 1000;
  const lines = [
    `${
      report.dryRun ? "dry run, nothing written:" : "migrated"
    } ${report.source} → ${report.target}`,
    `repositories: ${report.repositories}`,
    `blobs:        ${counts(report.blobs)}; ${report.blobs.links} more links` +
    ` (${formatBytes(report.bytesCopied)} ${copied})`,
    `manifests:    ${counts(report.manifests)}`,
    `tags:         ${counts(report.tags)}`,
    `time:         ${seconds.toFixed(1)} s, ${report.mbPerSecond.toFixed(1)} MB/s`,
  ];
  if (report.uploadsNotMigrated > 0) {
    lines.push(
      `uploads:      ${report.uploadsNotMigrated} unfinished upload sessions in the source ` +
        "were not migrated (clients push them again)",
    );
  }
  if (report.failures.length > 0) {
    lines.push(`failures (${report.failures.length}):`);
    for (const failure of report.failures) lines.push(`  ${describeFailure(failure)}`);
  }
  return lines.join("\n");
}

/** One failure as a line, e.g. `blob app@sha256:…: source bytes do not match the digest`. */
export function describeFailure(failure: MigrationFailure): string {
  const what = failure.kind === "tag"
    ? `tag ${failure.repository}:${failure.tag}`
    : `${failure.kind} ${failure.repository}@${failure.digest}`;
  return `${what}: ${failure.reason}`;
}
