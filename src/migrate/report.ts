/**
 * What `wharf migrate` did: counts of blobs, manifests, tags and carried plugin rows copied,
 * already present and failed, bytes and speed, and every failure with its reason. Printed for people and written as
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
  kind: "blob" | "manifest" | "tag" | "plugin";
  /**
   * The repository (for a blob: the first one linking it; for plugin rows: theirs, or empty
   * when the table has no repository column or failed as a whole).
   */
  repository: string;
  digest?: Digest;
  tag?: string;
  /** For plugin rows: `<plugin>/<table>`, e.g. `atomic-signatures/signatures`. */
  table?: string;
  reason: string;
}

/** The rows carried for one plugin table (or one plugin's artifact index records). */
export interface TableCounts extends Counts {
  plugin: string;
  /** The name the plugin gave the table, or `artifact index`. */
  table: string;
}

/** What moved of the plugins' own data (see `TableOptions.carry` in the plugin API). */
export interface PluginDataReport {
  /** All rows of {@link tables}. */
  rows: Counts;
  /** Every carried table of the target's plugins, with its plugins' artifact index records. */
  tables: TableCounts[];
  /** Plugins with tables in the source that the target does not load: nothing of them moved. */
  notLoaded: string[];
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
  /** Rows of plugin tables holding data found nowhere else, e.g. atomic signatures. */
  plugins: PluginDataReport;
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
    plugins: { rows: counts(), tables: [], notLoaded: [] },
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
    `plugin rows:  ${pluginRows(report.plugins, counts)}`,
    ...report.plugins.notLoaded.map((plugin) =>
      `plugins:      ${plugin} has tables in the source but is not loaded by the target: ` +
      "none of its data was carried"
    ),
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
    : failure.kind === "plugin"
    ? `plugin table ${failure.table}${failure.repository ? ` (${failure.repository})` : ""}`
    : `${failure.kind} ${failure.repository}@${failure.digest}`;
  return `${what}: ${failure.reason}`;
}

/** `2 copied, … (atomic-signatures: signatures, artifact index)`, or why there are none. */
function pluginRows(plugins: PluginDataReport, counts: (c: Counts) => string): string {
  if (plugins.tables.length === 0) return "none (no plugin of the target has a carried table)";
  const byPlugin = new Map<string, string[]>();
  for (const { plugin, table } of plugins.tables) {
    byPlugin.set(plugin, [...byPlugin.get(plugin) ?? [], table]);
  }
  const tables = [...byPlugin].map(([plugin, names]) => `${plugin}: ${names.join(", ")}`);
  return `${counts(plugins.rows)} (${tables.join("; ")})`;
}
