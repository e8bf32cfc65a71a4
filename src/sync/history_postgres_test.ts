/**
 * The sync history on SQLite and on a real PostgreSQL 15: tick claims (once, even after the run
 * ended and when many claim at once), one live run per mirror (a refusal names it), runs read by
 * id, the ledger of mirrored tags; and
 * on PostgreSQL the lease: renewed it holds, lapsed it is taken over and the old run ends
 * `interrupted`. Several pools stand for several processes.
 */
import postgres from "postgres";
import { assertEquals, assertOk } from "../../tests/assert.ts";
import { postgresUnavailableReason, startPostgres } from "../../tests/postgres.ts";
import { RegistryError } from "../oci/errors.ts";
import type { BeginResult, RunCounts, SyncHistory } from "./history.ts";
import { PostgresSyncHistory } from "./history_postgres.ts";
import { SqliteSyncHistory } from "./history_sqlite.ts";

const skip = postgresUnavailableReason();
if (skip) console.warn(`postgres sync history tests skipped: ${skip}`);

const COUNTS: RunCounts = {
  images: 1,
  unchanged: 2,
  skipped: 0,
  attachments: 3,
  blobs: 4,
  bytes: 5,
  retries: 0,
  deleted: 0,
};
const LEASE = 60_000;
const TICK = Date.UTC(2030, 0, 1, 3, 0, 0);

function idOf(result: BeginResult): number {
  if (!("id" in result)) throw new Error(`expected a new run, got ${JSON.stringify(result)}`);
  return result.id;
}

/** What both implementations promise; `a` and `b` are two processes on one history. */
async function claimsContract(t: Deno.TestContext, a: SyncHistory, b: SyncHistory) {
  await t.step("a tick is claimed once, also after its run ended", async () => {
    const id = idOf(await a.begin("m1", "schedule", { tick: TICK, leaseMs: LEASE }));
    assertEquals(await b.begin("m1", "schedule", { tick: TICK, leaseMs: LEASE }), {
      taken: true,
    });
    await a.finish(id, "success", COUNTS, []);
    assertEquals(await b.begin("m1", "schedule", { tick: TICK, leaseMs: LEASE }), {
      taken: true,
    });
    // Another mirror's tick of the same time is its own.
    const other = idOf(await b.begin("m2", "schedule", { tick: TICK, leaseMs: LEASE }));
    await b.finish(other, "success", COUNTS, []);
    const [run] = await b.list({ mirror: "m1" });
    assertEquals(
      [run.id, run.outcome, run.trigger, run.tick, run.images, run.pid],
      [id, "success", "schedule", new Date(TICK).toISOString(), 1, Deno.pid],
    );
    assertOk(run.host.length > 0 && run.endedAt !== null);
  });

  await t.step("one live run per mirror: the next tick and a manual run are refused", async () => {
    const id = idOf(await a.begin("m1", "schedule", { tick: TICK + 60_000, leaseMs: LEASE }));
    const busy = await b.begin("m1", "schedule", { tick: TICK + 120_000, leaseMs: LEASE });
    assertOk("busy" in busy && busy.busy.pid === Deno.pid, JSON.stringify(busy));
    // The refusal names the live run, which any process can read by its id.
    assertEquals("busy" in busy && busy.busy.id, id);
    assertOk("busy" in await b.begin("m1", "cli", { leaseMs: LEASE }));
    assertEquals((await b.get(id))?.outcome, "running");
    assertEquals(await b.get(id + 1000), null);
    assertEquals(await a.heartbeat(id, LEASE), true);
    assertEquals((await b.list({ outcome: "running" })).map((r) => r.id), [id]);
    await a.finish(id, "partial", COUNTS, ["x: boom"]);
    assertEquals(await a.heartbeat(id, LEASE), false);
    assertEquals(
      [(await b.get(id))?.outcome, (await b.get(id))?.errors],
      ["partial", ["x: boom"]],
    );
    // The refused tick was not claimed: it can still run once the mirror is free.
    const late = idOf(await b.begin("m1", "schedule", { tick: TICK + 120_000, leaseMs: LEASE }));
    await b.finish(late, "success", COUNTS, []);
    const manual = idOf(await b.begin("m1", "cli", { leaseMs: LEASE }));
    await b.finish(manual, "failed", COUNTS, []);
    const runs = await a.list({ mirror: "m1" });
    assertEquals(runs.map((r) => r.outcome), ["failed", "success", "partial", "success"]);
    assertEquals(runs[0].tick, null);
    assertEquals(runs[2].errors, ["x: boom"]);
    assertEquals((await a.list({ mirror: "m1", limit: 2 })).length, 2);
  });

  await t.step("many claims of one tick at once: exactly one run", async () => {
    const tick = TICK + 10 * 60_000;
    const results = await Promise.all(
      Array.from(
        { length: 24 },
        (_, i) => (i % 2 ? a : b).begin("m3", "schedule", { tick, leaseMs: LEASE }),
      ),
    );
    const won = results.filter((r) => "id" in r);
    assertEquals(won.length, 1, JSON.stringify(results));
    assertOk(results.every((r) => "id" in r || "taken" in r || "busy" in r));
    await a.finish(idOf(won[0]), "success", COUNTS, []);
    assertEquals((await a.list({ mirror: "m3" })).length, 1);
  });

  await t.step("ledger of mirrored tags", async () => {
    await a.recordTag("m1", "mirror/app", "v1", "sha256:aa");
    await b.recordTag("m1", "mirror/app", "v1", "sha256:bb");
    await b.recordTag("m1", "mirror/lib", "v2", "sha256:cc");
    await b.recordTag("m2", "mirror/zzz", "v2", "sha256:cc");
    assertEquals([...await a.mirroredTags("m1", "mirror/app")], [["v1", "sha256:bb"]]);
    assertEquals(await a.mirroredRepositories("m1"), ["mirror/app", "mirror/lib"]);
    await a.forgetTag("m1", "mirror/app", "v1");
    assertEquals((await b.mirroredTags("m1", "mirror/app")).size, 0);
    assertEquals(await b.mirroredRepositories("m1"), ["mirror/lib"]);
  });
}

Deno.test("sync history on SQLite: claims and ledger", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-history-" });
  const a = SqliteSyncHistory.open(`${dir}/sync.db`);
  const b = SqliteSyncHistory.open(`${dir}/sync.db`);
  try {
    await claimsContract(t, a, b);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "sync history on PostgreSQL: claims, ledger, leases",
  ignore: skip !== null,
  async fn(t) {
    const cluster = await startPostgres();
    const pools: postgres.Sql[] = [];
    const pool = () => {
      const sql = postgres(cluster.url, { max: 4, onnotice: () => {} });
      pools.push(sql);
      return sql;
    };
    try {
      // Three processes starting together create the tables once.
      const [a, b, c] = await Promise.all([1, 2, 3].map(() => PostgresSyncHistory.open(pool())));
      const versions = await pools[0]`SELECT version FROM wharf_sync_schema`;
      assertEquals(versions.map((r) => r.version), [1]);

      await claimsContract(t, a, b);

      await t.step("a renewed lease holds; a lapsed one is taken over", async () => {
        const held = idOf(await a.begin("lease", "schedule", { tick: 1, leaseMs: 1000 }));
        for (let i = 0; i < 4; i++) {
          await new Promise((r) => setTimeout(r, 300));
          assertEquals(await a.heartbeat(held, 1000), true);
          assertOk("busy" in await b.begin("lease", "schedule", { tick: 2 + i, leaseMs: 1000 }));
        }
        // The holder dies: no more heartbeats. Until the lease ends the mirror stays claimed.
        assertOk("busy" in await c.begin("lease", "cli", { leaseMs: 1000 }));
        await new Promise((r) => setTimeout(r, 1200));
        const next = idOf(await c.begin("lease", "schedule", { tick: 10, leaseMs: 1000 }));
        // The dead run is interrupted; its process, were it alive after all, learns so.
        assertEquals(await a.heartbeat(held, 1000), false);
        await c.finish(next, "success", COUNTS, []);
        const runs = await b.list({ mirror: "lease" });
        assertEquals(runs.map((r) => [r.id, r.outcome]), [[next, "success"], [
          held,
          "interrupted",
        ]]);
      });

      await t.step("listing marks lapsed runs interrupted", async () => {
        const id = idOf(await a.begin("lapsed", "cli", { leaseMs: 200 }));
        assertEquals((await b.list({ mirror: "lapsed" }))[0].outcome, "running");
        await new Promise((r) => setTimeout(r, 300));
        // Reading the run by id marks it as listing does.
        assertEquals((await c.get(id))?.outcome, "interrupted");
        assertEquals((await b.list({ mirror: "lapsed" }))[0].outcome, "interrupted");
        assertEquals((await c.list({ outcome: "running" })).map((r) => r.id).includes(id), false);
      });

      await t.step("an unreachable database is UNAVAILABLE", async () => {
        const dead = postgres(`postgres://postgres@127.0.0.1:1/postgres`, {
          connect_timeout: 2,
          max: 1,
          onnotice: () => {},
        });
        pools.push(dead);
        const err = await PostgresSyncHistory.open(dead).then(() => null, (e) => e);
        assertOk(err instanceof RegistryError && err.code === "UNAVAILABLE", String(err));
      });
    } finally {
      for (const sql of pools) await sql.end({ timeout: 1 }).catch(() => {});
      await cluster.stop();
    }
  },
});
