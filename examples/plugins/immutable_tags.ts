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
  apiVersion: 1,
  description: "refuses to move release tags; keeps an audit of pushes",

  setup(ctx) {
    const pattern = new RegExp(String(ctx.config.pattern ?? "^v[0-9]+\\.[0-9]+\\.[0-9]+$"));
    const audit = ctx.db.table("audit");
    ctx.db.migrate([
      `CREATE TABLE ${audit} (
         repository TEXT NOT NULL, tag TEXT, digest TEXT NOT NULL, pushed_at INTEGER NOT NULL
       )`,
    ]);

    ctx.on("manifest.beforePush", async (event) => {
      if (!event.tag || !pattern.test(event.tag)) return;
      const current = await ctx.content.getManifest(event.repository, event.tag);
      if (current && current.digest !== event.digest) {
        throw ctx.error("DENIED", `tag ${event.tag} is immutable`, { current: current.digest });
      }
    });

    ctx.on("manifest.pushed", (event) => {
      ctx.db.run(
        `INSERT INTO ${audit} (repository, tag, digest, pushed_at) VALUES (?, ?, ?, ?)`,
        event.repository,
        event.tag ?? null,
        event.digest,
        Date.now(),
      );
    });

    ctx.routes((app) => {
      app.get("/audit", (c) => {
        const repository = c.req.query("repository") ?? "";
        ctx.authorize(c, repository, "pull");
        const rows = ctx.db.all(
          `SELECT tag, digest, pushed_at FROM ${audit} WHERE repository = ? ORDER BY rowid`,
          repository,
        );
        return c.json({ repository, pushes: rows });
      });
    });
  },
};

export default plugin;
