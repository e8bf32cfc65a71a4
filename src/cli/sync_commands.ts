/**
 * `wharf sync run [NAME]`, `wharf sync status [NAME]` and `wharf sync reload`: mirroring from
 * the command line with the same engine `wharf serve` schedules.
 * @module
 */
import type { Command } from "commander";
import { join, resolve } from "node:path";
import { loadConfig } from "../config/load.ts";
import { createApp } from "../http/app.ts";
import { createLogger } from "../log/logger.ts";
import { openSync, openSyncHistory } from "../sync/open.ts";
import { formatBytes, progressRenderer } from "../sync/progress.ts";
import { openMetadataStore, openWharf } from "../wharf.ts";

interface CommonOptions {
  config?: string;
  data?: string;
}

/**
 * Adds the `sync` command group to `program`.
 *
 * @example
 * ```ts
 * registerSyncCommands(new Command("wharf"));
 * ```
 */
export function registerSyncCommands(program: Command): void {
  const sync = program.command("sync").description("mirror images from upstream registries");
  const common = (command: Command) =>
    command
      .option("-c, --config <file>", "configuration file (YAML) with a mirrors section")
      .option("-d, --data <dir>", "data directory (overrides the config)");

  common(sync.command("run").argument("[name]", "mirror to run (default: every mirror)"))
    .description("run mirrors once now, with a progress line on stderr")
    .option("--json", "print the run reports as JSON on stdout")
    .option("-q, --quiet", "no progress line")
    .action(async (name: string | undefined, options: CommonOptions & RunFlags) => {
      const config = await loadConfig(options.config, { data: options.data });
      const names = name ? [name] : config.mirrors.map((m) => m.name);
      if (names.length === 0) throw new Error("the config has no mirrors");
      for (const n of names) {
        if (!config.mirrors.some((m) => m.name === n)) throw new Error(`no mirror named "${n}"`);
      }
      const wharf = await openWharf(config, createLogger({ level: "warn", write: logToStderr }));
      const opened = await openSync(wharf, createApp);
      let worst = 0;
      try {
        const reports = [];
        for (const n of names) {
          const renderer = options.quiet ? undefined : progressRenderer();
          const report = await opened.service.run(n, {
            trigger: "cli",
            onProgress: renderer?.update,
          });
          renderer?.done();
          reports.push(report);
          worst = Math.max(
            worst,
            report.outcome === "success" ? 0 : report.outcome === "partial" ? 2 : 1,
          );
          if (!options.json) {
            const seconds = Math.max((report.endedAt - report.startedAt) / 1000, 0.001);
            console.log(
              `${n}: ${report.outcome} — ${report.images} copied, ${report.unchanged} unchanged, ` +
                `${report.skipped} skipped, ${report.attachments} attachments, ` +
                `${report.deleted} deleted, ${report.blobs} blobs (${formatBytes(report.bytes)}, ` +
                `${formatBytes(report.bytes / seconds)}/s), ${report.retries} retries, ` +
                `${report.errors.length} errors in ${seconds.toFixed(1)} s`,
            );
            for (const error of report.errors.slice(0, 20)) console.log(`  error: ${error}`);
          }
        }
        if (options.json) console.log(JSON.stringify(reports, null, 2));
      } finally {
        await opened.close();
        await wharf.close();
      }
      // 2: some images failed; 1: nothing could be mirrored.
      if (worst === 1) Deno.exitCode = 1;
      else if (worst === 2) Deno.exitCode = 2;
    });

  common(sync.command("status").argument("[name]", "only this mirror"))
    .description("show the run history (start, end, outcome, counts, bytes, errors)")
    .option("-n, --limit <n>", "runs to show", "20")
    .option("--json", "print the history as JSON")
    .action(async (name: string | undefined, options: CommonOptions & StatusFlags) => {
      const config = await loadConfig(options.config, { data: options.data });
      // The history lives with the metadata: PostgreSQL when configured, else <data>/sync.db.
      const dataDir = resolve(config.data);
      await Deno.mkdir(dataDir, { recursive: true });
      const metadata = await openMetadataStore(config.metadata, dataDir);
      const history = await openSyncHistory(metadata, dataDir).catch(async (err) => {
        await metadata.close();
        throw err;
      });
      try {
        const runs = await history.list({ mirror: name, limit: Number(options.limit) || 20 });
        if (options.json) return console.log(JSON.stringify(runs, null, 2));
        if (runs.length === 0) return console.log("no runs yet");
        const rows = [[
          "ID",
          "MIRROR",
          "TRIGGER",
          "STARTED",
          "SECONDS",
          "OUTCOME",
          "IMAGES",
          "UNCHANGED",
          "SKIPPED",
          "ATTACH",
          "BYTES",
          "RETRIES",
          "ERRORS",
          "PROCESS",
        ]];
        for (const r of runs) {
          const seconds = r.endedAt
            ? ((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)
            : "-";
          rows.push([
            String(r.id),
            r.mirror,
            r.trigger,
            r.startedAt.replace(/\.\d+Z$/, "Z"),
            seconds,
            r.outcome,
            String(r.images),
            String(r.unchanged),
            String(r.skipped),
            String(r.attachments),
            formatBytes(r.bytes),
            String(r.retries),
            String(r.errors.length),
            r.host ? `${r.pid}@${r.host}` : String(r.pid),
          ]);
        }
        const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
        for (const row of rows) {
          console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
        }
        const latest = runs[0];
        for (const error of latest.errors.slice(0, 10)) {
          console.log(`  run ${latest.id} error: ${error}`);
        }
      } finally {
        await history.close();
        await metadata.close();
      }
    });

  common(sync.command("reload"))
    .description("make the running wharf serve re-read its mirrors (sends SIGHUP)")
    .action(async (options: CommonOptions) => {
      const config = await loadConfig(options.config, { data: options.data });
      const pidFile = join(resolve(config.data), "wharf.pid");
      let pid: number;
      try {
        pid = Number((await Deno.readTextFile(pidFile)).trim());
      } catch {
        throw new Error(`no ${pidFile}: is wharf serve running with this data directory?`);
      }
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${pidFile} holds no pid`);
      try {
        Deno.kill(pid, "SIGHUP");
      } catch (err) {
        throw new Error(`cannot signal process ${pid}: ${(err as Error).message}`);
      }
      console.log(`sent SIGHUP to wharf serve (pid ${pid})`);
    });
}

interface RunFlags {
  json?: boolean;
  quiet?: boolean;
}

interface StatusFlags {
  limit: string;
  json?: boolean;
}

function logToStderr(line: string): void {
  console.error(line);
}
