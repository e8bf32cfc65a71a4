import { hostname } from "node:os";
import postgres from "postgres";
import { assertEquals } from "../../tests/assert.ts";
import { postgresUnavailableReason, startPostgres } from "../../tests/postgres.ts";
import { PostgresCoordination } from "./postgres.ts";

const skip = postgresUnavailableReason();
if (skip) console.warn(`postgres coordination tests skipped: ${skip}`);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "postgres coordination: leases exclude across pools, lapse when not renewed",
  ignore: skip !== null,
  fn: async (t) => {
    const cluster = await startPostgres();
    // Two pools stand for two processes.
    const poolA = postgres(cluster.url, { max: 4, onnotice: () => {} });
    const poolB = postgres(cluster.url, { max: 4, onnotice: () => {} });
    try {
      const [a, b] = await Promise.all([
        PostgresCoordination.open(poolA, { leaseTtlMs: 600 }),
        PostgresCoordination.open(poolB, { leaseTtlMs: 600 }),
      ]);

      await t.step("run is exclusive across processes and renews past the ttl", async () => {
        const events: string[] = [];
        const task = (name: string) => async () => {
          events.push(`${name} in`);
          await pause(900); // longer than the ttl: the lease must be renewed meanwhile
          events.push(`${name} out`);
        };
        await Promise.all([a.locks.run("blob", task("a")), b.locks.run("blob", task("b"))]);
        assertEquals(events.length, 4);
        assertEquals(events[0].split(" ")[0], events[1].split(" ")[0]);
        assertEquals(events[2].split(" ")[0], events[3].split(" ")[0]);
      });

      await t.step("tryRun gives up at once while another process holds the key", async () => {
        let release!: () => void;
        const held = a.locks.run("gc", () => new Promise<void>((r) => release = r));
        await pause(50);
        assertEquals(await b.locks.tryRun("gc", () => Promise.resolve(1)), { ran: false });
        assertEquals(await a.locks.tryRun("gc", () => Promise.resolve(1)), { ran: false });
        release();
        await held;
        assertEquals(await b.locks.tryRun("gc", () => Promise.resolve(2)), { ran: true, value: 2 });
      });

      await t.step("a dead holder's lease lapses after the ttl", async () => {
        // A lease row as a killed process leaves it: never renewed, never released.
        await poolA`INSERT INTO wharf_leases (name, holder, expires_at)
                    VALUES ('upload:x', 'dead', clock_timestamp() + interval '500 milliseconds')`;
        assertEquals(await b.locks.tryRun("upload:x", () => Promise.resolve(0)), { ran: false });
        const started = Date.now();
        assertEquals(await b.locks.run("upload:x", () => Promise.resolve(3)), 3);
        const waited = Date.now() - started;
        if (waited < 200 || waited > 3000) throw new Error(`waited ${waited} ms for a dead lease`);
      });

      await t.step("a lease of a dead process on this host is taken at once", async () => {
        const dead = new Deno.Command("true").spawn();
        const { pid } = dead;
        await dead.status;
        await poolA`INSERT INTO wharf_leases (name, holder, expires_at)
                    VALUES ('upload:y', ${`${hostname()}:${pid}:x`}, clock_timestamp() + interval '1 hour')`;
        assertEquals(await b.locks.tryRun("upload:y", () => Promise.resolve(4)), {
          ran: true,
          value: 4,
        });
        await poolA`INSERT INTO wharf_leases (name, holder, expires_at)
                    VALUES ('upload:z', ${`${hostname()}:1:x`}, clock_timestamp() + interval '1 hour')`;
        assertEquals(await b.locks.tryRun("upload:z", () => Promise.resolve(5)), { ran: false });
      });

      await t.step("a shared value is created once, whoever races", async () => {
        let made = 0;
        const values = await Promise.all(
          [a, b, a, b].map((c, i) => c.sharedValue("key.pem", () => `value-${i}-${++made}`)),
        );
        assertEquals(new Set(values).size, 1);
        assertEquals(await b.sharedValue("key.pem", () => "other"), values[0]);
      });

      await t.step("each tick of a job is claimed once, never an older one", async () => {
        const first = await Promise.all([a, b, a, b].map((c) => c.claim("gc", 1000)));
        assertEquals(first.filter(Boolean).length, 1);
        assertEquals(await b.claim("gc", 999), false);
        assertEquals(await b.claim("other", 999), true);
        assertEquals(await a.claim("gc", 1001), true);
      });

      await t.step("failure counts are shared and forgotten after a quiet window", async () => {
        assertEquals(await a.failures.add("login:10.0.0.9", 60_000), 1);
        assertEquals(await b.failures.add("login:10.0.0.9", 60_000), 2);
        assertEquals(await a.failures.count("login:10.0.0.9", 60_000), 2);
        await pause(30);
        assertEquals(await b.failures.count("login:10.0.0.9", 10), 0);
        assertEquals(await b.failures.add("login:10.0.0.9", 10), 1);
        await a.failures.clear("login:10.0.0.9");
        assertEquals(await b.failures.count("login:10.0.0.9", 60_000), 0);
      });
    } finally {
      await poolA.end({ timeout: 1 });
      await poolB.end({ timeout: 1 });
      await cluster.stop();
    }
  },
});
