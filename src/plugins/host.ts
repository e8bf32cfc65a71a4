/**
 * The plugin host: loads plugins, gives each its context, and runs their hook handlers around
 * registry events with failures contained. It implements the registry's {@link RegistryHooks}.
 * @module
 */
import { type Context, Hono } from "hono";
import type { Logger } from "../log/logger.ts";
import { RegistryError } from "../oci/errors.ts";
import { assertName, parseReference } from "../oci/names.ts";
import type { Registry } from "../registry/registry.ts";
import type { DeleteEvent, ManifestEvent, PullEvent, RegistryHooks } from "../registry/hooks.ts";
import type { AppEnv } from "../http/context.ts";
import {
  API_VERSION,
  type AttachmentRequest,
  type ContentReader,
  type HookName,
  type Hooks,
  type Plugin,
  type PluginContext,
  type SyncCompletedEvent,
  type SyncSubjectEvent,
} from "./api.ts";
import type { PluginStore } from "./database.ts";
import type { PluginModule } from "./loader.ts";

/** How long one handler may take before the host stops waiting for it. */
const HOOK_TIMEOUT_MS = 15_000;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** A plugin as loaded, for `wharf plugins list` and logs. */
export interface LoadedPlugin {
  name: string;
  source: string;
  description?: string;
  status: "active" | "failed" | "disabled";
  error?: string;
}

/** A plugin table declared `{ carry: true }`: its rows move with the registry. */
export interface CarriedTable {
  plugin: string;
  /** The name the plugin gave it, e.g. `signatures`. */
  name: string;
  /** Its full name, e.g. `p_atomic_signatures_signatures`. */
  table: string;
}

type Handler<K extends HookName> = { plugin: string; fn: Hooks[K] };
type RouteRegistration = { plugin: string; prefix: string; register: (app: Hono) => void };

/** Loads plugins and dispatches hooks to them. */
export class PluginHost implements RegistryHooks {
  readonly loaded: LoadedPlugin[] = [];
  readonly store: PluginStore;
  #log: Logger;
  #registry?: Registry;
  #handlers = new Map<HookName, Handler<HookName>[]>();
  #routes: RouteRegistration[] = [];
  #advertised = new Map<string, Record<string, string>>();
  #carried: CarriedTable[] = [];

  constructor(store: PluginStore, log: Logger) {
    this.store = store;
    this.#log = log;
  }

  /** Connects the host to the registry whose content plugins read. */
  attach(registry: Registry): void {
    this.#registry = registry;
  }

  /**
   * Sets up `plugins` in order. A plugin with a bad shape, an unknown API version or a
   * failing `setup` is logged and left out; the others run.
   */
  async load(
    plugins: PluginModule[],
    config: Record<string, unknown>,
    disabled: string[] = [],
  ): Promise<void> {
    for (const { module, source, error } of plugins) {
      const plugin = error ?? validatePlugin(module, source);
      if (typeof plugin === "string") {
        this.loaded.push({ name: source, source, status: "failed", error: plugin });
        this.#log.error("plugin not loaded", { source, error: plugin });
        continue;
      }
      const entry: LoadedPlugin = {
        name: plugin.name,
        source,
        description: plugin.description,
        status: "active",
      };
      if (this.loaded.some((p) => p.name === plugin.name && p.status === "active")) {
        entry.status = "failed";
        entry.error = `a plugin named "${plugin.name}" is already loaded`;
      } else if (disabled.includes(plugin.name)) {
        entry.status = "disabled";
      } else {
        try {
          await plugin.setup(this.#context(plugin.name, sectionOf(config, plugin.name)));
        } catch (err) {
          entry.status = "failed";
          entry.error = (err as Error).message;
          this.#drop(plugin.name);
        }
      }
      if (entry.error) {
        this.#log.error("plugin setup failed", { plugin: plugin.name, error: entry.error });
      }
      this.loaded.push(entry);
    }
  }

  /** Adds every plugin's routes to the app (call after {@link load}). */
  mountRoutes(app: Hono<AppEnv>): void {
    for (const { prefix, register } of this.#routes) {
      const sub = new Hono();
      register(sub);
      app.route(prefix, sub as unknown as Hono<AppEnv>);
    }
  }

  /** The tables the loaded plugins declared carried, in declaration order. */
  carriedTables(): CarriedTable[] {
    return [...this.#carried];
  }

  #context(name: string, config: Record<string, unknown>): PluginContext {
    const log = this.#log.with({ plugin: name });
    const db = this.store.database(name);
    return {
      name,
      config,
      log,
      db: {
        ...db,
        table: (table, options) => {
          const full = db.table(table);
          const known = this.#carried.some((c) => c.table === full);
          if (options?.carry && !known) {
            this.#carried.push({ plugin: name, name: table, table: full });
          }
          return full;
        },
      },
      content: this.#content(),
      artifacts: this.store.artifacts(name),
      on: (hook, fn) => {
        const list = this.#handlers.get(hook) ?? [];
        list.push({ plugin: name, fn: fn as Hooks[HookName] });
        this.#handlers.set(hook, list);
      },
      routes: (register) =>
        this.#routes.push({ plugin: name, prefix: `/wharf/v1/plugins/${name}`, register }),
      mount: (prefix, register) => this.#routes.push({ plugin: name, prefix, register }),
      advertise: (headers) => {
        this.#advertised.set(name, { ...this.#advertised.get(name), ...headers });
      },
      error: (code, message, detail) => new RegistryError(code, message, { detail }),
      authorize(c, repository, action) {
        const auth = (c as Context<AppEnv>).get("auth");
        assertName(repository);
        if (!auth.access.can(repository, action)) throw auth.deny(repository, action);
      },
    };
  }

  #content(): ContentReader {
    const registry = () => {
      if (!this.#registry) throw new Error("plugin host is not attached to a registry");
      return this.#registry;
    };
    return {
      async readBlob(repository, digest, maxBytes = 4 * 1024 * 1024) {
        const size = await registry().blobs.size(repository, digest);
        if (size > maxBytes) {
          throw new RegistryError(
            "SIZE_INVALID",
            `blob ${digest} is larger than ${maxBytes} bytes`,
          );
        }
        const stream = await registry().blobs.read(repository, digest);
        return new Uint8Array(await new Response(stream).arrayBuffer());
      },
      async getManifest(repository, reference) {
        try {
          const manifest = await registry().manifests.get(
            repository,
            parseReference(reference, "read"),
          );
          return {
            digest: manifest.digest,
            mediaType: manifest.mediaType,
            content: manifest.content,
          };
        } catch (err) {
          if (err instanceof RegistryError && err.status === 404) return null;
          throw err;
        }
      },
      parents: (repository, digest) => registry().metadata.parentManifests(repository, digest),
      async listTags(repository) {
        try {
          return (await registry().manifests.tags(repository, { limit: 100_000 })).items;
        } catch (err) {
          if (err instanceof RegistryError && err.status === 404) return [];
          throw err;
        }
      },
    };
  }

  #drop(plugin: string): void {
    for (const [hook, list] of this.#handlers) {
      this.#handlers.set(hook, list.filter((h) => h.plugin !== plugin));
    }
    this.#routes = this.#routes.filter((r) => r.plugin !== plugin);
    this.#advertised.delete(plugin);
    this.#carried = this.#carried.filter((c) => c.plugin !== plugin);
  }

  /** Headers the plugins add to `/v2/` answers. */
  pingHeaders(): [string, string][] {
    return [...this.#advertised.values()].flatMap((headers) => Object.entries(headers));
  }

  /** Runs every handler of a hook in registration order; returns their results. */
  async #run<K extends HookName>(
    hook: K,
    event: Parameters<Hooks[K]>[0],
    onError: "reject" | "contain" | "fail-closed",
  ): Promise<Awaited<ReturnType<Hooks[K]>>[]> {
    const results: Awaited<ReturnType<Hooks[K]>>[] = [];
    for (const handler of this.#handlers.get(hook) ?? []) {
      try {
        const fn = handler.fn as (e: typeof event) => ReturnType<Hooks[K]>;
        results.push(
          await withTimeout(Promise.resolve(fn(event)), HOOK_TIMEOUT_MS) as Awaited<
            ReturnType<Hooks[K]>
          >,
        );
      } catch (err) {
        if (err instanceof RegistryError && onError !== "contain") throw err;
        this.#log.error("plugin hook failed", { plugin: handler.plugin, hook, error: String(err) });
        if (onError === "fail-closed") {
          throw new RegistryError(
            "UNAVAILABLE",
            `plugin ${handler.plugin} could not check this request`,
          );
        }
      }
    }
    return results;
  }

  /** Plugins may reject a push with a RegistryError; their other failures never block it. */
  async beforePush(event: ManifestEvent): Promise<void> {
    await this.#run("manifest.beforePush", event, "reject");
  }

  async pushed(event: ManifestEvent): Promise<void> {
    await this.#run("manifest.pushed", event, "contain");
  }

  /** Pull policy fails closed: a handler that breaks refuses the pull rather than allow it. */
  async beforePull(event: PullEvent): Promise<void> {
    await this.#run("manifest.beforePull", event, "fail-closed");
  }

  async deleted(event: DeleteEvent): Promise<void> {
    try {
      await this.store.forget(event.repository, event.digest);
    } catch (err) {
      // The manifest is gone already; a stale record is harmless and a later push replaces it.
      this.#log.error("artifact index not cleaned", { ...event, error: String(err) });
    }
    await this.#run("manifest.deleted", event, "contain");
  }

  /** Every plugin's extra content to mirror with a subject. */
  async syncAttachments(event: SyncSubjectEvent): Promise<AttachmentRequest[]> {
    return (await this.#run("sync.attachments", event, "contain")).flat();
  }

  async syncCompleted(event: SyncCompletedEvent): Promise<void> {
    await this.#run("sync.completed", event, "contain");
  }
}

function sectionOf(config: Record<string, unknown>, name: string): Record<string, unknown> {
  const section = config[name];
  return typeof section === "object" && section !== null && !Array.isArray(section)
    ? section as Record<string, unknown>
    : {};
}

/** The plugin of a module's default export, or the reason it is not one. */
export function validatePlugin(module: unknown, source: string): Plugin | string {
  const plugin = (module as { default?: unknown })?.default ?? module;
  if (typeof plugin !== "object" || plugin === null) return `${source}: no default export`;
  const { name, apiVersion, setup } = plugin as Partial<Plugin>;
  if (typeof name !== "string" || !NAME.test(name)) {
    return `${source}: name must match ${NAME.source}`;
  }
  if (apiVersion !== API_VERSION) {
    return `${source}: plugin API version ${apiVersion} is not supported (this registry: ${API_VERSION})`;
  }
  if (typeof setup !== "function") return `${source}: setup must be a function`;
  return plugin as Plugin;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
