/**
 * `wharf gc` and `wharf scrub`: maintenance run directly on a data directory. While `wharf
 * serve` uses the directory they refuse (the server runs GC on `gc.schedule` itself), unless
 * `--force`.
 * @module
 */
import type { Command } from "commander";
import { join, resolve } from "node:path";
import { loadConfig } from "../config/load.ts";
import { formatBytes } from "../config/units.ts";
import { createLogger } from "../log/logger.ts";
import { scrub } from "../registry/scrub.ts";
import { openWharf, type Wharf } from "../wharf.ts";

interface MaintenanceOptions {
  config?: string;
  data?: string;
  force?: boolean;
  json?: boolean;
}

/** Adds `gc` and `scrub` to the program. */
export function registerMaintenanceCommands(program: Command): void {
  const common = (command: Command) =>
    command
      .option("-c, --config <file>", "configuration file (YAML)")
      .option("-d, --data <dir>", "data directory (overrides the config)")
      .option("--force", "run even though a wharf serve process uses the data directory")
      .option("--json", "print the report as JSON");

  common(program.command("gc"))
    .description(
      "remove unreferenced blobs, untagged manifests and idle uploads (retention rules apply)",
    )
    .option("--dry-run", "report what would be removed, remove nothing")
    .action(async (options: MaintenanceOptions & { dryRun?: boolean }) => {
      await withWharf(options, async (wharf) => {
        const report = await wharf.gc({ dryRun: options.dryRun });
        if (options.json) return console.log(JSON.stringify(report, null, 2));
        const verb = report.dryRun ? "would remove" : "removed";
        console.log(
          `gc ${verb}: ${report.tagsDeleted.length} tags, ${report.manifestsDeleted.length} manifests, ` +
            `${report.blobLinksRemoved} blob links, ${report.blobsDeleted} blobs ` +
            `(${formatBytes(report.bytesFreed)}), ${report.uploadsExpired} upload sessions ` +
            `in ${report.durationMs} ms`,
        );
        for (const tag of report.tagsDeleted) {
          console.log(`  tag ${tag.repository}:${tag.tag} (${tag.reason})`);
        }
        for (const manifest of report.manifestsDeleted) {
          console.log(`  manifest ${manifest.repository}@${manifest.digest}`);
        }
      });
    });

  common(program.command("scrub"))
    .description("re-hash every stored blob; quarantine and unlink corrupt ones")
    .option("--report-only", "only report corrupt blobs")
    .action(async (options: MaintenanceOptions & { reportOnly?: boolean }) => {
      await withWharf(options, async (wharf) => {
        const report = await scrub(wharf.registry, { quarantine: !options.reportOnly });
        if (options.json) return console.log(JSON.stringify(report, null, 2));
        const rate = report.bytes / 1e6 / Math.max(report.durationMs / 1000, 0.001);
        console.log(
          `scrub checked ${report.checked} blobs (${formatBytes(report.bytes)}) in ` +
            `${report.durationMs} ms (${rate.toFixed(0)} MB/s): ${report.corrupt.length} corrupt`,
        );
        for (const bad of report.corrupt) {
          console.log(
            `  ${bad.digest} has content ${bad.actual}` +
              `${options.reportOnly ? "" : " (quarantined)"}; linked in ${
                bad.repositories.join(", ") || "no repository"
              }`,
          );
        }
        if (report.corrupt.length > 0) Deno.exitCode = 2;
      });
    });
}

async function withWharf(options: MaintenanceOptions, run: (wharf: Wharf) => Promise<void>) {
  const config = await loadConfig(options.config, { data: options.data });
  const pid = await servingPid(resolve(config.data));
  if (pid !== null && !options.force) {
    throw new Error(
      `wharf serve (pid ${pid}) uses ${
        resolve(config.data)
      }; it runs GC on gc.schedule — stop it or pass --force`,
    );
  }
  const wharf = await openWharf(config, createLogger({ level: "warn" }));
  try {
    await run(wharf);
  } finally {
    await wharf.close();
  }
}

/** The pid in `<data>/wharf.pid` when that process is alive. */
async function servingPid(dataDir: string): Promise<number | null> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(join(dataDir, "wharf.pid"))).trim());
  } catch {
    return null;
  }
  try {
    Deno.kill(pid, "SIGCONT"); // harmless to a running process; throws when there is none
    return pid;
  } catch {
    return null;
  }
}
