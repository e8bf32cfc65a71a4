/**
 * putManifest / getManifest operations per second: SQLite (a WAL file) against PostgreSQL 15
 * (a throw-away durable cluster on loopback), one at a time and 16 in flight.
 * Run: `./run.sh run -A bench/metadata_bench.ts [count]`. Prints a table; not a test.
 * @module
 */
import type { MetadataStore } from "../src/metadata/metadata_store.ts";
import { PostgresMetadataStore } from "../src/metadata/postgres.ts";
import { SqliteMetadataStore } from "../src/metadata/sqlite.ts";
import { d, manifest } from "../tests/metadata_store_contract.ts";
import { postgresUnavailableReason, startPostgres } from "../tests/postgres.ts";

const COUNT = Number(Deno.args[0] ?? 2000);

function digestOf(i: number, salt: string) {
  return d((salt + i.toString(16)).padStart(64, "0"));
}

async function measure(
  count: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) await op(next++);
  }));
  return count / ((performance.now() - started) / 1000);
}

async function bench(name: string, store: MetadataStore): Promise<string[]> {
  const rows: string[] = [];
  for (const inFlight of [1, 16]) {
    const salt = `${inFlight}f`;
    await store.linkBlob("bench/app", d("a"), 100);
    const put = await measure(COUNT, inFlight, (i) =>
      store.putManifest(
        "bench/app",
        manifest(digestOf(i, salt), { blobs: [d("a")] }),
        `t${i % 50}`,
      ));
    const get = await measure(
      COUNT * 2,
      inFlight,
      (i) => store.getManifest("bench/app", digestOf(i % COUNT, salt)),
    );
    rows.push(
      `${name.padEnd(12)} ${String(inFlight).padStart(9)} ${put.toFixed(0).padStart(14)} ${
        get.toFixed(0).padStart(14)
      }`,
    );
  }
  return rows;
}

const rows = [
  `${"store".padEnd(12)} ${"in flight"} ${"putManifest/s".padStart(14)} ${
    "getManifest/s".padStart(14)
  }`,
];
const dir = await Deno.makeTempDir({ prefix: "wharf-bench-" });
const sqlite = SqliteMetadataStore.open(`${dir}/wharf.db`);
rows.push(...await bench("sqlite", sqlite));
sqlite.close();
await Deno.remove(dir, { recursive: true });

const skip = postgresUnavailableReason();
if (skip) {
  rows.push(`postgresql   skipped: ${skip}`);
} else {
  const cluster = await startPostgres({ durable: true });
  try {
    const pg = await PostgresMetadataStore.open(cluster.url, { maxConnections: 16 });
    rows.push(...await bench("postgresql", pg));
    await pg.close();
  } finally {
    await cluster.stop();
  }
}
console.log(`metadata store, ${COUNT} manifests per run, same machine`);
console.log(rows.join("\n"));
