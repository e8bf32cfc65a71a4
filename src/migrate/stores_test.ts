import { join } from "node:path";
import { assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { parseConfig } from "../config/load.ts";
import { openSource, sameStoreProblem, storeIdentity } from "./stores.ts";

const config = (raw: Record<string, unknown>) => parseConfig(raw, {}, "test");

Deno.test("storeIdentity names paths resolved and PostgreSQL without credentials", () => {
  const id = storeIdentity(config({
    data: "/srv/wharf",
    storage: { driver: "s3", bucket: "blobs", prefix: "/reg/", endpoint: "http://s3:9000" },
    metadata: { driver: "postgres", url: "postgres://wharf:secret@db/registry" },
  }));
  assertEquals(id, { blobs: "s3 http://s3:9000 blobs/reg", metadata: "postgres db:5432/registry" });
  assertEquals(
    storeIdentity(config({ data: "/srv/wharf" })),
    { blobs: "filesystem /srv/wharf", metadata: "sqlite /srv/wharf/wharf.db" },
  );
});

Deno.test("sameStoreProblem refuses a shared metadata or blob store", () => {
  const local = config({ data: "/srv/a" });
  const pg = (url: string) => ({ driver: "postgres", url });
  assertMatch(sameStoreProblem(local, config({ data: "/srv/a/" }))!, /same metadata store/);
  assertMatch(
    sameStoreProblem(
      config({ data: "/srv/a", metadata: pg("postgres://u:1@db/x") }),
      config({ data: "/srv/b", metadata: pg("postgres://v:2@db:5432/x") }),
    )!,
    /same metadata store \(postgres db:5432\/x\)/,
  );
  assertMatch(
    sameStoreProblem(local, config({ data: "/srv/a", metadata: { path: "/srv/b/wharf.db" } }))!,
    /share one blob store \(filesystem \/srv\/a\)/,
  );
  assertEquals(sameStoreProblem(local, config({ data: "/srv/b" })), null);
});

Deno.test("openSource refuses a data directory or database that does not exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-stores-" });
  try {
    const missing = join(dir, "nothing");
    const noBlobs = await assertRejects(() => openSource(config({ data: missing })), Error);
    assertEquals(noBlobs.message, `source blob store: no directory ${missing}/blobs`);
    await Deno.mkdir(join(dir, "blobs"));
    const noDb = await assertRejects(() => openSource(config({ data: dir })), Error);
    assertEquals(noDb.message, `source metadata store: no database file ${dir}/wharf.db`);
    // Nothing was created by looking.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["blobs"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
