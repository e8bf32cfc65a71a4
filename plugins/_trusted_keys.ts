/**
 * Trusted public keys per repository glob, as the cosign and attestations plugins read them
 * from their config sections:
 *
 * ```yaml
 * keys:
 *   - name: release                 # shown in verification results and named by policies
 *     key: ./cosign.pub             # PEM file (or `publicKey:` with the PEM inline)
 *     repositories: ["prod/**"]     # default: every repository
 * ```
 * @module
 */
import { parsePublicKey, type PluginContext, repositoryMatcher } from "../src/plugins/api.ts";

/** A loaded key. */
export interface TrustedKey {
  name: string;
  key: ReturnType<typeof parsePublicKey>;
  matches(repository: string): boolean;
}

/** Reads `ctx.config.keys`; throws a readable error for a bad entry (the plugin is left out). */
export async function loadTrustedKeys(ctx: PluginContext): Promise<TrustedKey[]> {
  const entries = ctx.config.keys ?? [];
  if (!Array.isArray(entries)) throw new Error(`plugins.${ctx.name}.keys must be a list`);
  const keys: TrustedKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const where = `plugins.${ctx.name}.keys[${i}]`;
    if (typeof entry !== "object" || entry === null) throw new Error(`${where} must be a mapping`);
    const { name, key, publicKey, repositories } = entry as Record<string, unknown>;
    let pem: string;
    if (typeof publicKey === "string") pem = publicKey;
    else if (typeof key === "string") {
      try {
        pem = await Deno.readTextFile(key);
      } catch (err) {
        throw new Error(`${where}: cannot read ${key}: ${(err as Error).message}`);
      }
    } else throw new Error(`${where} needs "key" (a PEM file) or "publicKey" (inline PEM)`);
    let parsed;
    try {
      parsed = parsePublicKey(pem);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    const globs = repositories === undefined ? ["**"] : repositories;
    if (!Array.isArray(globs) || !globs.every((g) => typeof g === "string")) {
      throw new Error(`${where}.repositories must be a list of globs`);
    }
    keys.push({
      name: typeof name === "string" ? name : `key-${i + 1}`,
      key: parsed,
      matches: repositoryMatcher(globs as string[]),
    });
  }
  return keys;
}
