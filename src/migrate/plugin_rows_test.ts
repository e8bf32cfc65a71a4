/**
 * `carryPluginRows` between real plugin databases: SQLite → PostgreSQL → SQLite with bytes,
 * large integers, numbered ids, the repository filter, a table that moves whole, a target table
 * of another version, dry runs and second runs. Skips the PostgreSQL half when it is missing.
 */
import postgres from "postgres";
import { assertEquals } from "../../tests/assert.ts";
import { postgresUnavailableReason, startPostgres } from "../../tests/postgres.ts";
import { createLogger } from "../log/logger.ts";
import type { Plugin } from "../plugins/api.ts";
import type { PluginStore } from "../plugins/database.ts";
import { PluginHost } from "../plugins/host.ts";
import { PostgresPluginStore } from "../plugins/postgres_database.ts";
import { SqlitePluginStore } from "../plugins/sqlite_database.ts";
import type { Digest } from "../oci/digest.ts";
import { type CarryOptions, carryPluginRows } from "./plugin_rows.ts";
import { emptyReport, type MigrationFailure } from "./report.ts";

const BYTES = new Uint8Array(Array.from({ length: 256 }, (_, i) => 255 - i));
const BIG = 2n ** 60n + 1n;
const SUBJECT = `sha256:${"b".repeat(64)}` as Digest;

/**
 * A plugin with three carried tables — `notes` (natural key, repository column, bytes, and in
 * PostgreSQL a numbered `seq`),
 * `log` (a numbered id, a unique natural key, no repository column), `wide` (one more column
 * in version 2) — and one derived table that stays behind.
 */
function notesPlugin(version: 1 | 2): Plugin {
  return {
    name: "notes",
    apiVersion: 2,
    async setup(ctx) {
      const notes = ctx.db.table("notes", { carry: true });
      const log = ctx.db.table("log", { carry: true });
      const wide = ctx.db.table("wide", { carry: true });
      const derived = ctx.db.table("derived");
      await ctx.db.migrate([
        {
          sqlite: `CREATE TABLE ${notes} (repository TEXT NOT NULL, k TEXT NOT NULL,
                     body BLOB NOT NULL, big INTEGER NOT NULL, PRIMARY KEY (repository, k)) STRICT;
                   CREATE TABLE ${log} (id INTEGER PRIMARY KEY, event TEXT NOT NULL UNIQUE);
                   CREATE TABLE ${wide} (k TEXT PRIMARY KEY);
                   CREATE TABLE ${derived} (k TEXT PRIMARY KEY);`,
          // As atomic-signatures: a numbered column only PostgreSQL declares.
          postgres: `CREATE TABLE ${notes} (seq bigint GENERATED ALWAYS AS IDENTITY,
                       repository text NOT NULL, k text NOT NULL,
                       body bytea NOT NULL, big bigint NOT NULL, PRIMARY KEY (repository, k));
                     CREATE TABLE ${log} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       event text NOT NULL UNIQUE);
                     CREATE TABLE ${wide} (k text PRIMARY KEY);
                     CREATE TABLE ${derived} (k text PRIMARY KEY);`,
        },
        ...version === 2 ? [`ALTER TABLE ${wide} ADD COLUMN extra TEXT`] : [],
      ]);
    },
  };
}

async function loadHost(store: PluginStore, version: 1 | 2 = 1): Promise<PluginHost> {
  const host = new PluginHost(store, createLogger({ write: () => {} }));
  await host.load([{ module: { default: notesPlugin(version) }, source: "notes.ts" }], {});
  return host;
}

/** Fills a source: two repositories' notes, two log events, a wide row, a derived row. */
async function fill(host: PluginHost): Promise<void> {
  const db = host.store.database("notes");
  for (const repository of ["a/one", "b/two"]) {
    await db.run(
      "INSERT INTO p_notes_notes VALUES (?, ?, ?, ?)",
      repository,
      "k",
      BYTES,
      BIG,
    );
    await host.store.artifacts("notes").record({
      repository,
      subject: SUBJECT,
      digest: SUBJECT,
      kind: "note",
      type: "test",
      status: "not-checked",
    });
  }
  await host.store.artifacts("other").record({
    repository: "a/one",
    subject: SUBJECT,
    digest: SUBJECT,
    kind: "signature",
    type: "cosign",
    status: "verified",
  });
  for (const event of ["first", "second"]) {
    await db.run("INSERT INTO p_notes_log (event) VALUES (?)", event);
  }
  await db.run("INSERT INTO p_notes_wide VALUES (?)", "w");
  await db.run("INSERT INTO p_notes_derived VALUES (?)", "d");
}

async function carry(
  source: PluginStore,
  target: PluginHost,
  options: Partial<CarryOptions> = {},
) {
  const report = emptyReport("s", "t", false).plugins;
  const failures: MigrationFailure[] = [];
  await carryPluginRows(source, target, report, {
    dryRun: false,
    repositories: ["a/one", "b/two"],
    progress: () => {},
    fail: (failure) => failures.push(failure),
    ...options,
  });
  const copied = Object.fromEntries(report.tables.map((t) => [t.table, t.copied]));
  return { report, failures, copied };
}

/** Rows with bytes as plain arrays (PostgreSQL gives Buffers), to compare across dialects. */
async function rows(store: PluginStore, sql: string): Promise<Record<string, unknown>[]> {
  return (await store.database("notes").all(sql)).map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, v instanceof Uint8Array ? [...v] : v]),
    )
  );
}

/** What a store holds of the carried data, comparable across dialects. */
async function contents(store: PluginStore) {
  return {
    notes: await rows(store, "SELECT repository, k, body, big FROM p_notes_notes ORDER BY 1, 2"),
    log: await rows(store, "SELECT event FROM p_notes_log ORDER BY event"),
    wide: await rows(store, "SELECT k FROM p_notes_wide"),
    derived: await rows(store, "SELECT k FROM p_notes_derived"),
    index: await rows(
      store,
      `SELECT repository, plugin, kind FROM ${store.artifactTable} ORDER BY 1, 2`,
    ),
  };
}

const skip = postgresUnavailableReason();
if (skip) console.warn(`plugin_rows_test: PostgreSQL cases skipped — ${skip}`);

Deno.test("carryPluginRows: SQLite → SQLite, filtered, dry run, then once", async () => {
  const source = await loadHost(new SqlitePluginStore(":memory:"));
  const target = await loadHost(new SqlitePluginStore(":memory:"));
  try {
    await fill(source);
    const dry = await carry(source.store, target, { dryRun: true });
    assertEquals(dry.copied, { notes: 2, log: 2, wide: 1, "artifact index": 2 });
    assertEquals((await contents(target.store)).notes, []);

    const some = await carry(source.store, target, { repositories: ["b/two"] });
    assertEquals(some.failures, []);
    // `log` and `wide` have no repository column: they move whole.
    assertEquals(some.copied, { notes: 1, log: 2, wide: 1, "artifact index": 1 });
    assertEquals((await contents(target.store)).notes.map((r) => r.repository), ["b/two"]);

    const all = await carry(source.store, target);
    assertEquals(all.copied, { notes: 1, log: 0, wide: 0, "artifact index": 1 });
    assertEquals(all.report.rows, { copied: 2, present: 5, failed: 0 });
    const copied = await contents(target.store);
    assertEquals(copied.notes, (await contents(source.store)).notes);
    assertEquals(copied.derived, []);
    // Only the carrying plugin's records of the shared index move.
    assertEquals(copied.index.map((r) => `${r.repository} ${r.plugin}`), [
      "a/one notes",
      "b/two notes",
    ]);
  } finally {
    await source.store.close();
    await target.store.close();
  }
});

Deno.test("carryPluginRows: a plugin missing from the target is named, its rows stay", async () => {
  const source = await loadHost(new SqlitePluginStore(":memory:"));
  const target = new PluginHost(new SqlitePluginStore(":memory:"), createLogger({ write() {} }));
  try {
    await fill(source);
    const { report, failures } = await carry(source.store, target);
    assertEquals(failures, []);
    assertEquals(report.tables, []);
    assertEquals(report.notLoaded, ["notes"]);
  } finally {
    await source.store.close();
    await target.store.close();
  }
});

Deno.test({
  name: "carryPluginRows: SQLite → PostgreSQL → SQLite keeps bytes and integers exact",
  ignore: skip !== null,
  async fn() {
    const cluster = await startPostgres();
    const sql = postgres(cluster.url, { max: 4, onnotice: () => {} });
    const sqlite = await loadHost(new SqlitePluginStore(":memory:"));
    const back = await loadHost(new SqlitePluginStore(":memory:"));
    try {
      const pg = await loadHost(await PostgresPluginStore.open(sql));
      await fill(sqlite);
      const expected = await contents(sqlite.store);
      expected.derived = [];
      expected.index = expected.index.filter((r) => r.plugin === "notes");

      const dry = await carry(sqlite.store, pg, { dryRun: true });
      assertEquals(dry.copied, { notes: 2, log: 2, wide: 1, "artifact index": 2 });
      assertEquals((await contents(pg.store)).notes, []);

      const there = await carry(sqlite.store, pg);
      assertEquals(there.failures, []);
      assertEquals(there.copied, { notes: 2, log: 2, wide: 1, "artifact index": 2 });
      assertEquals(await contents(pg.store), expected);
      assertEquals((await carry(sqlite.store, pg)).report.rows.copied, 0);

      const returned = await carry(pg.store, back);
      assertEquals(returned.failures, []);
      assertEquals(await contents(back.store), expected);
      assertEquals((await carry(pg.store, back)).report.rows.copied, 0);

      // A source table with a column the target's lacks is reported; the others move.
      const newer = await loadHost(new SqlitePluginStore(":memory:"), 2);
      try {
        await newer.store.database("notes").run("INSERT INTO p_notes_wide VALUES ('v2', 'x')");
        const mismatch = await carry(newer.store, pg);
        assertEquals(mismatch.failures, [{
          kind: "plugin",
          repository: "",
          table: "notes/wide",
          reason: "the target's table has no column extra (another plugin version?)",
        }]);
      } finally {
        await newer.store.close();
      }
    } finally {
      await sqlite.store.close();
      await back.store.close();
      await sql.end();
      await cluster.stop();
    }
  },
});
