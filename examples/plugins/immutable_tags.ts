/**
 * Example plugin (see docs/PLUGINS.md): tags matching a pattern can be pushed once and never
 * moved, and every push is written to an audit table served at
 * `GET /wharf/v1/plugins/immutable-tags/audit?repository=<name>`.
 *
 * Config:
 * ```yaml
 * plugins:
 *   external: [./examples/plugins/immutable_tags.ts]
 *   immutable-tags:
 *     pattern: "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
 * ```
 * @module
 */
import type { Plugin } from "../../src/plugins/api.ts";

const plugin: Plugin = {
  name: "immutable-tags",
  apiVersion: 2,
  description: "refuses to move release tags; keeps an audit of pushes",

  async setup(ctx) {
    const pattern = new RegExp(String(ctx.config.pattern ?? "^v[0-9]+\\.[0-9]+\\.[0-9]+$"));
    // Not `{ carry: true }` (docs/PLUGINS.md): a log numbered by its id has no natural key for
    // `wharf migrate` to skip on a second run, and a migrated registry's log starts with the
    // migration's own pushes.
    const audit = ctx.db.table("audit");
    await ctx.db.migrate([
      // One text per database where they differ: here, how a column numbers itself.
      {
        sqlite: `CREATE TABLE ${audit} (
           id INTEGER PRIMARY KEY,
           repository TEXT NOT NULL, tag TEXT, digest TEXT NOT NULL, pushed_at INTEGER NOT NULL
         )`,
        postgres: `CREATE TABLE ${audit} (
           id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           repository text NOT NULL, tag text, digest text NOT NULL, pushed_at bigint NOT NULL
         )`,
      },
      // SQL that both accept: one text.
      `CREATE INDEX ${audit}_by_repository ON ${audit}(repository, id)`,
    ]);

    ctx.on("manifest.beforePush", async (event) => {
      if (!event.tag || !pattern.test(event.tag)) return;
      const current = await ctx.content.getManifest(event.repository, event.tag);
      if (current && current.digest !== event.digest) {
        throw ctx.error("DENIED", `tag ${event.tag} is immutable`, { current: current.digest });
      }
    });

    ctx.on("manifest.pushed", async (event) => {
      await ctx.db.run(
        `INSERT INTO ${audit} (repository, tag, digest, pushed_at) VALUES (?, ?, ?, ?)`,
        event.repository,
        event.tag ?? null,
        event.digest,
        Date.now(),
      );
    });

    ctx.routes((app) => {
      app.get("/audit", async (c) => {
        const repository = c.req.query("repository") ?? "";
        ctx.authorize(c, repository, "pull");
        const rows = await ctx.db.all(
          `SELECT tag, digest, pushed_at FROM ${audit} WHERE repository = ? ORDER BY id`,
          repository,
        );
        return c.json({ repository, pushes: rows });
      });
    });
  },
};

export default plugin;
