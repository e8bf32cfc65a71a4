/**
 * The plugin database contract, run against `SqlitePluginStore` and `PostgresPluginStore` (a
 * real PostgreSQL, a fresh database per case), plus what only PostgreSQL has: several processes
 * migrating at once, and an unreachable server.
 */
import postgres from "postgres";
import { assertEquals, assertMatch, assertOk, assertRejects } from "../../tests/assert.ts";
import { postgresUnavailableReason, startPostgres } from "../../tests/postgres.ts";
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import type { ArtifactRecord } from "./api.ts";
import { ARTIFACT_COLUMNS, type PluginStore } from "./database.ts";
import { PostgresPluginStore } from "./postgres_database.ts";
import { SqlitePluginStore } from "./sqlite_database.ts";

const skip = postgresUnavailableReason();
if (skip) console.warn(`postgres plugin store tests skipped: ${skip}`);

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

type Open = () => Promise<{ store: PluginStore; dispose: () => Promise<void> }>;

/** Every case against a fresh store from `open`. */
async function contract(t: Deno.TestContext, open: Open): Promise<void> {
  const step = (name: string, fn: (store: PluginStore) => Promise<void>) =>
    t.step(name, async () => {
      const { store, dispose } = await open();
      try {
        await fn(store);
      } finally {
        await dispose();
      }
    });

  await step("tables are namespaced and migrations run once, in either form", async (store) => {
    const db = store.database("my-plugin");
    assertEquals(db.table("things"), "p_my_plugin_things");
    let thrown: unknown;
    try {
      db.table("Bad Name");
    } catch (err) {
      thrown = err;
    }
    assertMatch(String(thrown), /invalid table name/);
    const things = db.table("things");
    const migrations = [
      `CREATE TABLE ${things} (name TEXT NOT NULL)`,
      {
        sqlite: `ALTER TABLE ${things} ADD COLUMN size INTEGER`,
        postgres: `ALTER TABLE ${things} ADD COLUMN size bigint`,
      },
    ];
    await db.migrate(migrations);
    await db.migrate(migrations);
    await db.run(`INSERT INTO ${things} VALUES (?, ?)`, "x", 2 ** 40);
    assertEquals(await db.all(`SELECT name, size FROM ${things}`), [{ name: "x", size: 2 ** 40 }]);
  });

  await step("a failing migration names itself and leaves nothing half-done", async (store) => {
    const db = store.database("broken");
    const table = db.table("t");
    const bad = [`CREATE TABLE ${table} (a TEXT)`, `CREATE TABLE ${table} (a TEXT)`];
    const err = await assertRejects(() => db.migrate(bad), Error);
    assertMatch(err.message, /^plugin broken migration 2 failed: /);
    // Version 1 may or may not have stayed, but 2 was not recorded: a fixed list applies.
    await db.migrate([bad[0], `CREATE INDEX ${table}_by_a ON ${table}(a)`]);
    assertEquals(await db.run(`INSERT INTO ${table} VALUES (?)`, "ok"), 1);
  });

  await step("values come back as SQLite gives them, placeholders as ?", async (store) => {
    const db = store.database("values");
    const t = db.table("t");
    await db.migrate([{
      sqlite: `CREATE TABLE ${t} (k TEXT PRIMARY KEY, n INTEGER, big INTEGER, b BLOB, f REAL)`,
      postgres: `CREATE TABLE ${t} (k text PRIMARY KEY, n bigint, big bigint, b bytea, f float8)`,
    }]);
    const bytes = new Uint8Array([0, 1, 2, 255]);
    assertEquals(
      await db.run(
        `INSERT INTO ${t} (k, n, big, b, f) VALUES (?, ?, ?, ?, ?), ('lit?', NULL, NULL, NULL, NULL)`,
        "a",
        Date.now(),
        2n ** 60n,
        bytes,
        1.5,
      ),
      2,
    );
    const row = await db.get(`SELECT n, big, b, f FROM ${t} WHERE k = ?`, "a");
    assertEquals(typeof row?.n, "number");
    assertEquals(row?.big, 2n ** 60n);
    assertEquals(new Uint8Array(row?.b as Uint8Array), bytes);
    assertEquals(row?.f, 1.5);
    assertEquals(await db.get(`SELECT count(*) AS c FROM ${t} WHERE k = '?' OR k = ?`, "lit?"), {
      c: 1,
    });
    assertEquals(await db.get(`SELECT (1 = 1) AS yes, ? AS "camelCase"`, "x"), {
      yes: 1,
      camelCase: "x",
    });
    assertEquals(await db.get(`SELECT k FROM ${t} WHERE k = ?`, "none"), undefined);
    assertEquals(await db.run(`UPDATE ${t} SET n = n + 1`), 2);
    assertEquals(store.database("values").dialect, store.dialect);
  });

  await step("transactions commit, roll back, and refuse ctx.db inside", async (store) => {
    const db = store.database("tx");
    const t = db.table("t");
    await db.migrate([`CREATE TABLE ${t} (k TEXT PRIMARY KEY)`]);
    assertEquals(
      await db.transaction(async (tx) => {
        await tx.run(`INSERT INTO ${t} VALUES (?)`, "kept");
        return await tx.get(`SELECT count(*) AS c FROM ${t}`);
      }),
      { c: 1 },
    );
    // A statement outside, issued while a transaction is open, is not rolled back with it.
    const failing = db.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${t} VALUES (?)`, "undone");
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error("changed my mind");
    });
    const outside = db.run(`INSERT INTO ${t} VALUES (?)`, "outside");
    assertEquals((await assertRejects(() => failing, Error)).message, "changed my mind");
    assertEquals(await outside, 1);
    const misuse = await assertRejects(
      () => db.transaction(() => db.all(`SELECT k FROM ${t}`)),
      Error,
    );
    assertMatch(misuse.message, /tx argument/);
    const rows = await db.all(`SELECT k FROM ${t} ORDER BY k`);
    assertEquals(rows.map((r) => r.k), ["kept", "outside"]);
  });

  await step("the artifact index: record, replace, list, remove, forget", async (store) => {
    const cosign = store.artifacts("cosign");
    const sbom = store.artifacts("sbom");
    const record = (over: Partial<ArtifactRecord>): ArtifactRecord => ({
      repository: "r",
      subject: d("a"),
      digest: d("1"),
      kind: "signature",
      type: "cosign",
      status: "unverified",
      ...over,
    });
    await cosign.record(record({}));
    await cosign.record(record({ status: "verified", detail: { keys: ["k"] } }));
    await sbom.record(
      record({ digest: d("2"), kind: "sbom", type: "spdx", status: "not-checked" }),
    );
    await sbom.record(record({ repository: "other", digest: d("2"), kind: "sbom", type: "spdx" }));
    const listed = await store.list("r", d("a"));
    assertEquals(listed.map((r) => [r.plugin, r.kind, r.status]), [
      ["sbom", "sbom", "not-checked"],
      ["cosign", "signature", "verified"],
    ]);
    assertEquals(listed[0].detail, undefined);
    assertEquals(listed[1].detail, { keys: ["k"] });
    assertEquals(await cosign.list("r", d("a")), listed);
    assertEquals((await cosign.ofArtifact("r", d("2"))).map((r) => r.plugin), ["sbom"]);
    await cosign.remove("r", d("2")); // not cosign's: stays
    assertEquals((await store.list("r", d("a"))).length, 2);
    await sbom.remove("r", d("2"));
    assertEquals((await store.list("r", d("a"))).map((r) => r.plugin), ["cosign"]);
    await store.forget("r", d("a")); // the subject left: its records go
    assertEquals(await store.list("r", d("a")), []);
    assertEquals((await store.list("other", d("a"))).length, 1);
  });

  await step("columns say which ones the database fills; plugins with tables", async (store) => {
    const db = store.database("cols");
    const [numbered, natural, computed] = ["numbered", "natural", "computed"].map((n) =>
      db.table(n)
    );
    await db.migrate([{
      sqlite: `CREATE TABLE ${numbered} (id INTEGER PRIMARY KEY, note TEXT);
               CREATE TABLE ${natural} (id INTEGER NOT NULL, part TEXT, PRIMARY KEY (id, part));
               CREATE TABLE ${computed} (a INTEGER, twice INTEGER GENERATED ALWAYS AS (a * 2))`,
      postgres: `CREATE TABLE ${numbered} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                   note text);
                 CREATE TABLE ${natural} (id bigint NOT NULL, part text, PRIMARY KEY (id, part));
                 CREATE TABLE ${computed} (a bigint, twice bigint GENERATED ALWAYS AS (a * 2) STORED)`,
    }]);
    const generated = async (table: string) =>
      (await store.columns(table))?.map((c) => `${c.name}${c.generated ? "*" : ""}`);
    assertEquals(await generated(numbered), ["id*", "note"]);
    assertEquals(await generated(natural), ["id", "part"]);
    assertEquals(await generated(computed), ["a", "twice*"]);
    assertEquals(await store.columns("p_cols_absent"), null);
    assertEquals(
      (await store.columns(store.artifactTable))?.map((c) => c.name),
      [...ARTIFACT_COLUMNS.split(", "), "updated_at"],
    );
    await store.database("other").migrate([`CREATE TABLE p_other_t (a TEXT)`]);
    assertEquals(await store.pluginsWithTables(), ["cols", "other"]);
  });
}

Deno.test("plugin store contract: sqlite", (t) =>
  contract(t, () => {
    const store = new SqlitePluginStore(":memory:");
    return Promise.resolve({ store, dispose: () => store.close() });
  }));

Deno.test({
  name: "plugin store: postgres (contract, concurrent migrations, unreachable server)",
  ignore: skip !== null,
  fn: async (t) => {
    const cluster = await startPostgres();
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    let databases = 0;
    const freshDatabase = async () => {
      const name = `plugins_${++databases}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      return cluster.urlFor(name);
    };
    const pool = (url: string) => postgres(url, { max: 4, onnotice: () => {} });
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await admin.end();
      await cluster.stop();
    };
    try {
      await t.step("contract", (t) =>
        contract(t, async () => {
          const sql = pool(await freshDatabase());
          const store = await PostgresPluginStore.open(sql);
          return { store, dispose: () => sql.end() };
        }));

      await t.step("three processes starting at once migrate once", async () => {
        const url = await freshDatabase();
        const pools = [pool(url), pool(url), pool(url)];
        try {
          const table = "p_race_t";
          const migrations = [
            `CREATE TABLE ${table} (a text)`,
            `CREATE INDEX ${table}_by_a ON ${table}(a)`,
            `INSERT INTO ${table} VALUES ('once')`,
          ];
          await Promise.all(pools.map(async (sql) => {
            const store = await PostgresPluginStore.open(sql);
            await store.database("race").migrate(migrations);
          }));
          const [sql] = pools;
          const versions = await sql`SELECT version FROM wharf_plugin_migrations
                                     WHERE plugin = 'race' ORDER BY version`;
          assertEquals(versions.map((r) => r.version), [1, 2, 3]);
          assertEquals((await sql.unsafe(`SELECT a FROM ${table}`)).map((r) => r.a), ["once"]);
        } finally {
          await Promise.all(pools.map((sql) => sql.end()));
        }
      });

      await t.step("an unreachable database answers UNAVAILABLE", async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (listener.addr as Deno.NetAddr).port;
        listener.close();
        const sql = postgres(`postgres://postgres@127.0.0.1:${port}/x`, { connect_timeout: 2 });
        try {
          const err = await PostgresPluginStore.open(sql).then(() => null, (e) => e);
          assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
          assertEquals([err.code, err.status], ["UNAVAILABLE", 503]);
        } finally {
          await sql.end();
        }
      });

      await t.step("a database that goes away answers UNAVAILABLE", async () => {
        const sql = pool(await freshDatabase());
        try {
          const store = await PostgresPluginStore.open(sql);
          const db = store.database("gone");
          await db.migrate([`CREATE TABLE ${db.table("t")} (a text)`]);
          await stop();
          for (const attempt of [() => store.list("r", d("a")), () => db.all("SELECT 1")]) {
            const err = await attempt().then(() => null, (e) => e);
            assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
            assertEquals(err.code, "UNAVAILABLE");
          }
        } finally {
          await sql.end({ timeout: 1 });
        }
      });
    } finally {
      await stop();
    }
  },
});
