/**
 * `wharf migrate --from SOURCE.yaml --to TARGET.yaml`: copies a registry between stores (e.g. a
 * single node's SQLite + directory to PostgreSQL + S3, or back), prints a report, writes it as
 * JSON with `--report`, and exits 2 when anything was not migrated.
 * @module
 */
import type { Command } from "commander";
import { loadConfig } from "../config/load.ts";
import { repositoryMatcher } from "../config/globs.ts";
import { parseSize } from "../config/units.ts";
import { createLogger } from "../log/logger.ts";
import { migrate } from "../migrate/migrate.ts";
import { formatReport } from "../migrate/report.ts";
import { openSource, openTarget, sameStoreProblem, storeIdentity } from "../migrate/stores.ts";

interface MigrateCommandOptions {
  from: string;
  to: string;
  dryRun?: boolean;
  repositories?: string[];
  report?: string;
  jobs: string;
  chunkSize: string;
  quiet?: boolean;
}

/** Adds `migrate` to the program. */
export function registerMigrateCommand(program: Command): void {
  program.command("migrate")
    .description(
      "copy every repository from one registry's stores to another's (resumable, verified)",
    )
    .requiredOption("--from <file>", "config of the registry to read (its storage + metadata)")
    .requiredOption("--to <file>", "config of the registry to write (plugins there run too)")
    .option("--dry-run", "report what would be copied, write nothing")
    .option("--repositories <glob...>", "only repositories matching these globs")
    .option("--report <file>", "also write the report as JSON to this file")
    .option("--jobs <n>", "blobs (then repositories) handled at once", "4")
    .option("--chunk-size <size>", "bytes per upload append; resumes from the last one", "64MiB")
    .option("-q, --quiet", "no progress lines on stderr")
    .action(async (options: MigrateCommandOptions) => {
      const jobs = Number(options.jobs);
      if (!Number.isInteger(jobs) || jobs < 1) throw new Error("--jobs: expected a number ≥ 1");
      const chunkSize = parseSize(options.chunkSize);
      if (chunkSize === null || chunkSize < 1) {
        throw new Error(`--chunk-size: "${options.chunkSize}" is not a size`);
      }
      const from = await loadConfig(options.from);
      const to = await loadConfig(options.to);
      const sourceIds = labelled("source", () => storeIdentity(from));
      const targetIds = labelled("target", () => storeIdentity(to));
      const problem = sameStoreProblem(from, to);
      if (problem) throw new Error(problem);

      const source = await openSource(from);
      try {
        // Target plugin and store log lines go to stderr: stdout carries the report.
        const log = createLogger({ level: "warn", write: (line) => console.error(line) });
        const target = await openTarget(to, log);
        try {
          const report = await migrate(source, target, {
            dryRun: options.dryRun,
            repositories: options.repositories
              ? repositoryMatcher(options.repositories)
              : undefined,
            jobs,
            chunkSize,
            describe: {
              source: `${sourceIds.blobs} + ${sourceIds.metadata}`,
              target: `${targetIds.blobs} + ${targetIds.metadata}`,
            },
            onProgress: options.quiet ? undefined : (line) => console.error(line),
          });
          console.log(formatReport(report));
          if (options.report) {
            await Deno.writeTextFile(options.report, JSON.stringify(report, null, 2) + "\n");
          }
          if (report.failures.length > 0) Deno.exitCode = 2;
        } finally {
          await target.close();
        }
      } finally {
        await source.close();
      }
    });
}

function labelled<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}
