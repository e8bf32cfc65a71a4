/**
 * Loads the configuration: YAML file (optional), then command-line overrides, validated with
 * one readable error per problem.
 * @module
 */
import { parse } from "yaml";
import { type Config, ConfigSchema } from "./schema.ts";

/** A configuration problem, reported to the user as one line. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Values given on the command line, which win over the file. */
export interface ConfigOverrides {
  listen?: string;
  data?: string;
}

/** Reads and validates a config file (or the defaults when `path` is undefined). */
export async function loadConfig(
  path: string | undefined,
  overrides: ConfigOverrides = {},
): Promise<Config> {
  let raw: unknown = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
    }
    try {
      raw = parse(text) ?? {};
    } catch (err) {
      const first = (err as Error).message.split("\n", 1)[0];
      throw new ConfigError(`config file ${path} is not valid YAML: ${first}`);
    }
  }
  return parseConfig(raw, overrides, path ?? "defaults");
}

/** Validates a config object, applying overrides; `source` names it in errors. */
export function parseConfig(raw: unknown, overrides: ConfigOverrides, source: string): Config {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`config ${source}: expected a mapping at the top level`);
  }
  const merged: Record<string, unknown> = { ...raw };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) merged[key] = value;
  }
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.length ? issue.path.join(".") : "(top level)";
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`config ${source}: ${problems.join("; ")}`);
  }
  return result.data;
}
