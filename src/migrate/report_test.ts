import { assertEquals } from "../../tests/assert.ts";
import type { Digest } from "../oci/digest.ts";
import { formatBytes } from "../config/units.ts";
import { emptyReport, formatReport } from "./report.ts";

Deno.test("formatReport: summary lines, then one line per failure", () => {
  const report = emptyReport(
    "filesystem /a + sqlite /a/wharf.db",
    "s3 x b/ + postgres db/w",
    false,
  );
  report.repositories = 2;
  report.blobs = { copied: 3, present: 1, failed: 1, links: 2 };
  report.bytesCopied = 3 * 1024 * 1024;
  report.manifests = { copied: 2, present: 0, failed: 1 };
  report.tags = { copied: 1, present: 0, failed: 1 };
  report.durationMs = 1500;
  report.mbPerSecond = 2.1;
  report.uploadsNotMigrated = 1;
  const digest = `sha256:${"a".repeat(64)}` as Digest;
  report.failures = [
    { kind: "blob", repository: "app", digest, reason: "source bytes do not match the digest" },
    { kind: "tag", repository: "app", tag: "v1", digest, reason: "its manifest failed" },
  ];
  assertEquals(formatReport(report).split("\n"), [
    "migrated filesystem /a + sqlite /a/wharf.db → s3 x b/ + postgres db/w",
    "repositories: 2",
    "blobs:        3 copied, 1 already present, 1 failed; 2 more links (3.0 MiB copied)",
    "manifests:    2 copied, 0 already present, 1 failed",
    "tags:         1 copied, 0 already present, 1 failed",
    "plugin rows:  none (no plugin of the target has a carried table)",
    "time:         1.5 s, 2.1 MB/s",
    "uploads:      1 unfinished upload sessions in the source were not migrated (clients push them again)",
    "failures (2):",
    `  blob app@${digest}: source bytes do not match the digest`,
    "  tag app:v1: its manifest failed",
  ]);
  assertEquals(
    formatReport(emptyReport("a", "b", true)).split("\n")[0],
    "dry run, nothing written: a → b",
  );
});

Deno.test("formatReport: carried plugin rows, plugins the target does not load, row failures", () => {
  const report = emptyReport("a", "b", false);
  report.plugins = {
    rows: { copied: 3, present: 1, failed: 2 },
    tables: [
      { plugin: "atomic-signatures", table: "signatures", copied: 2, present: 1, failed: 0 },
      { plugin: "atomic-signatures", table: "artifact index", copied: 1, present: 0, failed: 0 },
      { plugin: "notes", table: "notes", copied: 0, present: 0, failed: 2 },
    ],
    notLoaded: ["old-plugin"],
  };
  report.failures = [{
    kind: "plugin",
    repository: "app",
    table: "notes/notes",
    reason: "2 rows refused by the target: boom",
  }];
  const lines = formatReport(report).split("\n");
  assertEquals(lines.slice(5, 7), [
    "plugin rows:  3 copied, 1 already present, 2 failed " +
    "(atomic-signatures: signatures, artifact index; notes: notes)",
    "plugins:      old-plugin has tables in the source but is not loaded by the target: " +
    "none of its data was carried",
  ]);
  assertEquals(
    lines.at(-1),
    "  plugin table notes/notes (app): 2 rows refused by the target: boom",
  );
});

Deno.test("formatBytes uses binary units", () => {
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(100_000), "97.7 KiB");
  assertEquals(formatBytes(5 * 2 ** 30), "5.0 GiB");
});
