import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { createLogger } from "../log/logger.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { Plugin } from "./api.ts";
import { SqlitePluginStore } from "./sqlite_database.ts";
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
  return new PluginHost(
    new SqlitePluginStore(":memory:"),
    createLogger({ write: (l) => lines.push(l) }),
  );
}

Deno.test("host: bad modules and failing setups are reported and left out", async () => {
  const lines: string[] = [];
  const h = host(lines);
  const failing: Plugin = {
    name: "failing",
    apiVersion: 2,
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
    { module: { default: { name: "ok", apiVersion: 2, setup() {} } }, source: "ok.ts" },
  ], {});
  assertEquals(h.loaded.map((p) => [p.name, p.status]), [
    ["old.ts", "failed"],
    ["empty.ts", "failed"],
    ["failing", "failed"],
    ["ok", "active"],
  ]);
  await h.beforePush(event); // the failing plugin's hook was dropped with it
  assertEquals(lines.some((l) => l.includes("boom")), true);
  await h.store.close();
});

Deno.test("host: push rejections pass, other push failures are contained, pull fails closed", async () => {
  const h = host();
  const calls: string[] = [];
  await h.load([{
    module: {
      default: {
        name: "hooks",
        apiVersion: 2,
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
  await h.store.close();
});

Deno.test("host: a plugin of API version 1 (synchronous database) is refused by name", async () => {
  const h = host();
  await h.load(
    [{ module: { default: { name: "old", apiVersion: 1, setup() {} } }, source: "x" }],
    {},
  );
  assertEquals(h.loaded[0].status, "failed");
  assertEquals(h.loaded[0].error, "x: plugin API version 1 is not supported (this registry: 2)");
  await h.store.close();
});

Deno.test("host: tables declared carried are listed, not those of a plugin that failed", async () => {
  const h = host();
  const declaring = (name: string, fail: boolean): Plugin => ({
    name,
    apiVersion: 2,
    setup(ctx) {
      ctx.db.table("kept", { carry: true });
      ctx.db.table("kept", { carry: true }); // declared twice: listed once
      ctx.db.table("derived");
      if (fail) throw new Error("boom");
    },
  });
  await h.load([
    { module: { default: declaring("good", false) }, source: "good.ts" },
    { module: { default: declaring("bad", true) }, source: "bad.ts" },
  ], {});
  assertEquals(h.carriedTables(), [{ plugin: "good", name: "kept", table: "p_good_kept" }]);
  await h.store.close();
});
