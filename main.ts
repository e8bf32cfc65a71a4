/**
 * The `wharf` command line: `wharf serve` and, later, the operational subcommands.
 * Every failure is one readable line on stderr and a non-zero exit.
 * @module
 */
import { Command, CommanderError } from "commander";
import { ConfigError, loadConfig } from "./src/config/load.ts";
import { startServer } from "./src/server.ts";
import { listUsers, removeUser, setPassword } from "./src/auth/htpasswd.ts";
import { readPassword } from "./src/cli/password.ts";
import { registerMaintenanceCommands } from "./src/cli/maintenance_commands.ts";
import { registerCosignCommands } from "./src/cli/cosign_commands.ts";
import { registerSyncCommands } from "./src/cli/sync_commands.ts";
import { registerMigrateCommand } from "./src/cli/migrate_command.ts";
import { PluginHost } from "./src/plugins/host.ts";
import { SqlitePluginStore } from "./src/plugins/sqlite_database.ts";
import { pluginModules } from "./src/plugins/loader.ts";
import { createLogger } from "./src/log/logger.ts";

/** Builds the CLI program; `main` runs it. */
export function buildProgram(): Command {
  const program = new Command("wharf")
    .description("OCI registry with mirroring, signatures and plugins")
    .version("0.1.0")
    .exitOverride();

  program.command("serve")
    .description("serve the registry (embedded defaults: SQLite + ./data, port 5000)")
    .option("-c, --config <file>", "configuration file (YAML)")
    .option("-l, --listen <host:port>", "address to listen on (overrides the config)")
    .option("-d, --data <dir>", "data directory (overrides the config)")
    .action(async (options: { config?: string; listen?: string; data?: string }) => {
      const config = await loadConfig(options.config, {
        listen: options.listen,
        data: options.data,
      });
      const server = await startServer(config, undefined, {
        reloadConfig: () =>
          loadConfig(options.config, { listen: options.listen, data: options.data }),
      });
      const stop = async () => {
        server.log.info("shutting down");
        await server.shutdown();
        Deno.exit(0);
      };
      Deno.addSignalListener("SIGTERM", stop);
      Deno.addSignalListener("SIGINT", stop);
    });

  const user = program.command("user").description("manage users in the htpasswd file");
  const htpasswdOptions = (command: Command) =>
    command
      .option("-c, --config <file>", "configuration file naming auth.htpasswd")
      .option("-f, --htpasswd <file>", "htpasswd file (overrides the config)");
  htpasswdOptions(user.command("add").argument("<name>"))
    .description("add a user (password from WHARF_PASSWORD, a prompt, or stdin)")
    .action(async (name: string, options: HtpasswdOptions) => {
      const path = await htpasswdPath(options);
      if ((await listUsers(path)).includes(name)) {
        throw new Error(`user "${name}" already exists; use "wharf user passwd"`);
      }
      await setPassword(path, name, await readPassword(["WHARF_PASSWORD"], "Password: "));
      console.log(`added user "${name}" to ${path}`);
    });
  htpasswdOptions(user.command("passwd").argument("<name>"))
    .description("change a user's password")
    .action(async (name: string, options: HtpasswdOptions) => {
      const path = await htpasswdPath(options);
      if (!(await listUsers(path)).includes(name)) throw new Error(`no user "${name}" in ${path}`);
      await setPassword(path, name, await readPassword(["WHARF_PASSWORD"], "New password: "));
      console.log(`changed the password of "${name}"`);
    });
  htpasswdOptions(user.command("remove").argument("<name>"))
    .description("remove a user")
    .action(async (name: string, options: HtpasswdOptions) => {
      const path = await htpasswdPath(options);
      await removeUser(path, name);
      console.log(`removed user "${name}" from ${path}`);
    });
  htpasswdOptions(user.command("list"))
    .description("list users")
    .action(async (options: HtpasswdOptions) => {
      for (const name of await listUsers(await htpasswdPath(options))) console.log(name);
    });

  registerMaintenanceCommands(program);

  program.command("plugins").command("list")
    .description("list the plugins a config loads, and whether their setup succeeds")
    .option("-c, --config <file>", "configuration file (YAML)")
    .action(async (options: { config?: string }) => {
      const config = await loadConfig(options.config);
      const host = new PluginHost(
        new SqlitePluginStore(":memory:"),
        createLogger({ level: "error", write: () => {} }),
      );
      await host.load(
        await pluginModules(config.plugins.external, Deno.cwd()),
        config.plugins,
        config.plugins.disabled,
      );
      for (const plugin of host.loaded) {
        const note = plugin.error
          ? `  (${plugin.error})`
          : plugin.description
          ? `  ${plugin.description}`
          : "";
        console.log(`${plugin.name.padEnd(20)} ${plugin.status.padEnd(9)} ${plugin.source}${note}`);
      }
      await host.store.close();
      if (host.loaded.some((p) => p.status === "failed")) Deno.exitCode = 1;
    });

  registerCosignCommands(program);
  registerSyncCommands(program);
  registerMigrateCommand(program);
  return program;
}

interface HtpasswdOptions {
  config?: string;
  htpasswd?: string;
}

/** The htpasswd file from `--htpasswd`, else the config's `auth.htpasswd`. */
async function htpasswdPath(options: HtpasswdOptions): Promise<string> {
  if (options.htpasswd) return options.htpasswd;
  const config = await loadConfig(options.config);
  if (!config.auth?.htpasswd) {
    throw new Error("no htpasswd file: pass --htpasswd FILE or a --config with auth.htpasswd");
  }
  return config.auth.htpasswd;
}

/** Runs the CLI with `args`, turning errors into one line and exit code 1. */
export async function main(args: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      Deno.exit(err.exitCode);
    }
    const message = err instanceof ConfigError ? err.message : `error: ${(err as Error).message}`;
    console.error(message.split("\n", 1)[0]);
    Deno.exit(1);
  }
}

if (import.meta.main) await main(Deno.args);
