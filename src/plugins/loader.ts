/**
 * Finds the plugin modules to load: the built-in ones (statically imported, so they work in a
 * bundled or compiled binary) and external ones listed by path in the config.
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { BUILTIN_PLUGINS } from "../../plugins/mod.ts";

/** A module to hand to the plugin host, with where it came from. */
export interface PluginModule {
  module?: unknown;
  source: string;
  /** Why the module could not be imported. */
  error?: string;
}

/**
 * The built-in plugins followed by the external ones. An external module that fails to import
 * is returned with its error, so the host reports it and goes on.
 */
export async function pluginModules(external: string[], baseDir: string): Promise<PluginModule[]> {
  const modules: PluginModule[] = BUILTIN_PLUGINS.map((plugin) => ({
    module: plugin,
    source: `builtin:${plugin.name}`,
  }));
  for (const path of external) {
    const full = resolve(baseDir, path);
    try {
      modules.push({ module: await import(pathToFileURL(full).href), source: full });
    } catch (err) {
      modules.push({
        source: full,
        error: `import failed: ${(err as Error).message.split("\n", 1)[0]}`,
      });
    }
  }
  return modules;
}
