/**
 * The `wharf` command line: `wharf serve` and, later, the operational subcommands.
 * Every failure is one readable line on stderr and a non-zero exit.
 * @module
 */
import { Command, CommanderError } from "commander";
import { ConfigError, loadConfig } from "./src/config/load.ts";
import { startServer } from "./src/server.ts";

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
      const server = await startServer(config);
      const stop = async () => {
        server.log.info("shutting down");
        await server.shutdown();
        Deno.exit(0);
      };
      Deno.addSignalListener("SIGTERM", stop);
      Deno.addSignalListener("SIGINT", stop);
    });

  return program;
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
