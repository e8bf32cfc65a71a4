import postgres from "postgres";
import { assertEquals, assertOk } from "../../tests/assert.ts";
import {
  d,
  manifest,
  runMetadataStoreContract,
  type StoreHandle,
} from "../../tests/metadata_store_contract.ts";
import {
  type PostgresCluster,
  postgresUnavailableReason,
  startPostgres,
} from "../../tests/postgres.ts";
import type { Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { MIGRATIONS } from "./migrations.ts";
import { POSTGRES_MIGRATIONS, PostgresMetadataStore } from "./postgres.ts";
import { SqliteMetadataStore } from "./sqlite.ts";

const skip = postgresUnavailableReason();
if (skip) console.warn(`postgres metadata store tests skipped: ${skip}`);

Deno.test("postgres migrations keep step with the SQLite ones", () => {
  assertEquals(POSTGRES_MIGRATIONS.length, MIGRATIONS.length);
});

Deno.test("metadata store contract: sqlite", (t) =>
  runMetadataStoreContract(t, () => {
    const store = SqliteMetadataStore.open(":memory:");
    return Promise.resolve({ store, dispose: () => Promise.resolve(store.close()) });
  }));

Deno.test({
  name: "postgres metadata store (contract, concurrency, faults)",
  ignore: skip !== null,
  fn: async (t) => {
    const cluster = await startPostgres();
    const admin = postgres(cluster.url, { max: 2, onnotice: () => {} });
    let databases = 0;
    const freshDatabase = async () => {
      const name = `wharf_${++databases}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      return cluster.urlFor(name);
    };
    const open = async (url?: string): Promise<PostgresMetadataStore> =>
      await PostgresMetadataStore.open(url ?? await freshDatabase());
    try {
      await t.step(
        "contract",
        (t) =>
          runMetadataStoreContract(t, async (): Promise<StoreHandle> => {
            const store = await open();
            return { store, dispose: () => store.close() };
          }),
      );

      await t.step("migrations from several processes at once run once", async () => {
        const url = await freshDatabase();
        const stores = await Promise.all([1, 2, 3, 4].map(() => open(url)));
        try {
          for (const store of stores) {
            assertEquals(await store.schemaVersion(), POSTGRES_MIGRATIONS.length);
          }
          const raw = postgres(url, { max: 1, onnotice: () => {} });
          const rows = await raw`SELECT version FROM schema_migrations ORDER BY version`;
          await raw.end();
          assertEquals(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
          // Re-opening finds nothing to do.
          const again = await open(url);
          assertEquals(await again.schemaVersion(), POSTGRES_MIGRATIONS.length);
          await again.close();
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      });

      await t.step("two processes moving one tag lose no acknowledged write", async () => {
        const url = await freshDatabase();
        const a = await open(url);
        const b = await open(url);
        try {
          const pushed: Digest[] = [];
          const pushes = Array.from({ length: 60 }, (_, i) => {
            const digest = d(i.toString(16).padStart(2, "0").repeat(32).slice(0, 64));
            const store = i % 2 === 0 ? a : b;
            return store.putManifest("race", manifest(digest), "latest").then(() => {
              pushed.push(digest);
            });
          });
          await Promise.all(pushes);
          assertEquals(pushed.length, 60, "every push acknowledged");
          const tag = await a.resolveTag("race", "latest");
          assertOk(tag !== null && pushed.includes(tag), `tag points to a pushed manifest: ${tag}`);
          assertEquals(await b.resolveTag("race", "latest"), tag);
          for (const digest of pushed) {
            assertOk(await b.getManifest("race", digest), `acknowledged ${digest} exists`);
          }
          assertEquals((await a.listTags("race", { limit: 10 })).items, ["latest"]);
        } finally {
          await a.close();
          await b.close();
        }
      });

      await t.step("a conditional move racing a push never overwrites the push", async () => {
        const url = await freshDatabase();
        const mover = await open(url);
        const pusher = await open(url);
        try {
          // Each round: the tag at X; a push of P and a move X → Q at once, from two processes.
          // Either the move lands first and the push after it, or the move finds P and fails:
          // the tag ends at P every time (a check-then-set loses P when it reads X, P lands,
          // then it writes Q).
          const outcomes = { moved: 0, refused: 0 };
          for (let i = 0; i < 40; i++) {
            const hex = (c: string) => d(`${c}${i.toString(16).padStart(3, "0")}`.repeat(16));
            const [x, p, q] = [hex("a"), hex("b"), hex("c")];
            await pusher.putManifest("cas", manifest(x), "latest");
            const [moved] = await Promise.all([
              mover.putManifest("cas", manifest(q), "latest", { ifTagAt: x }),
              pusher.putManifest("cas", manifest(p), "latest"),
            ]);
            outcomes[moved ? "moved" : "refused"]++;
            assertEquals(await mover.resolveTag("cas", "latest"), p, `round ${i}: the push stays`);
            assertEquals(await pusher.getManifest("cas", q) !== null, moved, `round ${i}`);
          }
          console.log(`conditional move vs push, 40 rounds: ${JSON.stringify(outcomes)}`);
          // Many movers from one digest at once: exactly one wins.
          await pusher.putManifest("cas", manifest(d("e0")), "many");
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              (i % 2 ? mover : pusher).putManifest(
                "cas",
                manifest(d(`f${i.toString(16).padStart(3, "0")}`.repeat(16))),
                "many",
                { ifTagAt: d("e0") },
              )),
          );
          assertEquals(results.filter(Boolean).length, 1, "one conditional move from e0 wins");
        } finally {
          await mover.close();
          await pusher.close();
        }
      });

      await t.step("a push racing GC's unlink: one of them wins, never both", async () => {
        const url = await freshDatabase();
        const pusher = await open(url);
        const collector = await open(url);
        try {
          for (let i = 0; i < 30; i++) {
            const blob = d(`b${i.toString(16).padStart(3, "0")}`.repeat(16));
            const image = manifest(d(`c${i.toString(16).padStart(3, "0")}`.repeat(16)), {
              blobs: [blob],
            });
            await pusher.linkBlob("gc", blob, 1);
            const [push, unlinked] = await Promise.allSettled([
              pusher.putManifest("gc", image),
              collector.unlinkUnusedBlob("gc", blob, Date.now() + 60_000),
            ]);
            const linked = await collector.linkedBlobSize("gc", blob) !== null;
            if (push.status === "fulfilled") {
              assertOk(linked, "a stored manifest's blob stays linked");
              assertEquals(unlinked.status === "fulfilled" && unlinked.value, false);
            } else {
              assertEquals((push.reason as RegistryError).code, "MANIFEST_BLOB_UNKNOWN");
              assertEquals(linked, false);
            }
          }
        } finally {
          await pusher.close();
          await collector.close();
        }
      });

      await t.step("a slow database answers UNAVAILABLE and writes no tag", async () => {
        const url = await freshDatabase();
        const store = await PostgresMetadataStore.open(url, { statementTimeoutMs: 300 });
        const blocker = postgres(url, { max: 1, onnotice: () => {} });
        try {
          await store.putManifest("slow", manifest(d("1")), "latest");
          let release = () => {};
          const released = new Promise<void>((resolve) => release = resolve);
          let locked = () => {};
          const isLocked = new Promise<void>((resolve) => locked = resolve);
          const holding = blocker.begin(async (tx) => {
            await tx`SELECT id FROM repositories WHERE name = 'slow' FOR UPDATE`;
            locked();
            await released;
          });
          await isLocked;
          const err = await store.putManifest("slow", manifest(d("2")), "latest").then(
            () => null,
            (e) => e,
          );
          release();
          await holding;
          assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
          assertEquals(err.code, "UNAVAILABLE");
          assertEquals(err.status, 503);
          assertEquals(await store.resolveTag("slow", "latest"), d("1"));
          assertEquals(await store.getManifest("slow", d("2")), null);
        } finally {
          await blocker.end();
          await store.close();
        }
      });

      await t.step("an unreachable database answers UNAVAILABLE", async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (listener.addr as Deno.NetAddr).port;
        listener.close();
        const err = await PostgresMetadataStore.open(`postgres://postgres@127.0.0.1:${port}/x`, {
          connectTimeoutSeconds: 2,
        }).then((s) => s.close(), (e) => e);
        assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
        assertEquals(err.code, "UNAVAILABLE");
        assertEquals(err.status, 503);
      });

      await t.step("a database that goes away answers UNAVAILABLE", async () => {
        const store = await open();
        try {
          await store.putManifest("gone", manifest(d("1")), "latest");
          await admin.end();
          await stop(cluster);
          const err = await store.resolveTag("gone", "latest").then(() => null, (e) => e);
          assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
          assertEquals(err.code, "UNAVAILABLE");
          assertEquals(err.status, 503);
        } finally {
          await store.close();
        }
      });
    } finally {
      await admin.end();
      await stop(cluster);
    }
  },
});

const stopped = new WeakSet<PostgresCluster>();
async function stop(cluster: PostgresCluster): Promise<void> {
  if (stopped.has(cluster)) return;
  stopped.add(cluster);
  await cluster.stop();
}
