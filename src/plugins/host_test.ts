import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { createLogger } from "../log/logger.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { Plugin } from "./api.ts";
import { PluginStore } from "./database.ts";
import { PluginHost } from "./host.ts";

const digest = `sha256:${"a".repeat(64)}` as Digest;
const event = {
  repository: "r",
  digest,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  content: new Uint8Array(),
  manifest: { mediaType: "x", blobs: [], manifests: [], layers: [] },
};

function host(lines: string[] = []): PluginHost {
  return new PluginHost(new PluginStore(":memory:"), createLogger({ write: (l) => lines.push(l) }));
}

Deno.test("host: bad modules and failing setups are reported and left out", async () => {
  const lines: string[] = [];
  const h = host(lines);
  const failing: Plugin = {
    name: "failing",
    apiVersion: 1,
    setup(ctx) {
      ctx.on("manifest.beforePush", () => {
        throw ctx.error("DENIED", "should never run");
      });
      throw new Error("boom");
    },
  };
  await h.load([
    { module: { default: { name: "old", apiVersion: 0, setup() {} } }, source: "old.ts" },
    { module: {}, source: "empty.ts" },
    { module: { default: failing }, source: "failing.ts" },
    { module: { default: { name: "ok", apiVersion: 1, setup() {} } }, source: "ok.ts" },
  ], {});
  assertEquals(h.loaded.map((p) => [p.name, p.status]), [
    ["old.ts", "failed"],
    ["empty.ts", "failed"],
    ["failing", "failed"],
    ["ok", "active"],
  ]);
  await h.beforePush(event); // the failing plugin's hook was dropped with it
  assertEquals(lines.some((l) => l.includes("boom")), true);
  h.store.close();
});

Deno.test("host: push rejections pass, other push failures are contained, pull fails closed", async () => {
  const h = host();
  const calls: string[] = [];
  await h.load([{
    module: {
      default: {
        name: "hooks",
        apiVersion: 1,
        setup(ctx) {
          ctx.on("manifest.beforePush", (e) => {
            calls.push("beforePush");
            if (e.tag === "reject") throw ctx.error("DENIED", "no");
            if (e.tag === "crash") throw new TypeError("bug");
          });
          ctx.on("manifest.pushed", () => {
            throw new Error("indexing failed");
          });
          ctx.on("manifest.beforePull", () => {
            throw new Error("policy store down");
          });
        },
      } satisfies Plugin,
    },
    source: "hooks.ts",
  }], {});
  const rejected = await assertRejects(
    () => h.beforePush({ ...event, tag: "reject" }),
    RegistryError,
  );
  assertEquals(rejected.code, "DENIED");
  await h.beforePush({ ...event, tag: "crash" });
  await h.pushed(event);
  const pull = await assertRejects(
    () =>
      h.beforePull({
        repository: "r",
        reference: { kind: "digest", digest },
        digest,
        mediaType: "x",
        caller: { user: null, canPush: false },
      }),
    RegistryError,
  );
  assertEquals(pull.code, "UNAVAILABLE");
  assertEquals(calls, ["beforePush", "beforePush"]);
  h.store.close();
});

Deno.test("host: plugin tables are namespaced and migrations run once", () => {
  const store = new PluginStore(":memory:");
  const db = store.database("my-plugin");
  assertEquals(db.table("things"), "p_my_plugin_things");
  const migrations = [`CREATE TABLE ${db.table("things")} (name TEXT)`];
  db.migrate(migrations);
  db.migrate(migrations);
  db.run(`INSERT INTO ${db.table("things")} VALUES (?)`, "x");
  assertEquals(db.all(`SELECT name FROM ${db.table("things")}`).map((r) => r.name), ["x"]);
  store.close();
});
