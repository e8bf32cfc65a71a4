import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { createLogger } from "../log/logger.ts";
import { SqliteMetadataStore } from "../metadata/sqlite.ts";
import { FilesystemBlobStore } from "../storage/filesystem.ts";
import {
  type CheckResult,
  metadataCheck,
  ReadinessLog,
  runChecks,
  storageCheck,
} from "./health.ts";

Deno.test("checks pass on working stores, name their drivers and leave nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  const metadata = SqliteMetadataStore.open(":memory:");
  try {
    const store = await FilesystemBlobStore.open(dir);
    const results = await runChecks([metadataCheck(metadata), storageCheck(store)]);
    assertEquals(results.map(({ ms: _, ...r }) => r), [
      { name: "metadata", driver: "sqlite", ok: true },
      { name: "storage", driver: "filesystem", ok: true },
    ]);
    assertEquals(await store.listUploads(), []);
    assertEquals([...Deno.readDirSync(`${dir}/uploads`)], []);
  } finally {
    await metadata.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing or hanging check is reported by name; a hanging one is aborted", async () => {
  const dir = await Deno.makeTempDir();
  const metadata = SqliteMetadataStore.open(":memory:");
  await metadata.close(); // a closed database refuses queries
  const store = await FilesystemBlobStore.open(dir);
  await Deno.remove(`${dir}/uploads`);
  let aborted = false;
  const results = await runChecks([
    metadataCheck(metadata),
    storageCheck(store),
    {
      name: "slow",
      driver: "test",
      check: (signal) =>
        new Promise<void>((resolve) => {
          signal.addEventListener("abort", () => {
            aborted = true;
            resolve();
          });
        }),
    },
    { name: "fine", driver: "test", check: () => Promise.resolve() },
  ], 50);
  await Deno.remove(dir, { recursive: true });
  assertEquals(results.map((r) => [r.name, r.ok]), [
    ["metadata", false],
    ["storage", false],
    ["slow", false],
    ["fine", true],
  ]);
  assertEquals(results[2].error, "no answer within 50 ms");
  assertEquals(aborted, true);
  assertMatch(results[1].error!, /No such file|not found/i);
});

Deno.test("readiness changes are logged once per change, naming dependency and driver", () => {
  const lines: string[] = [];
  const readiness = new ReadinessLog(createLogger({ write: (line) => lines.push(line) }));
  const result = (ok: boolean): CheckResult[] => [
    { name: "metadata", driver: "postgres", ok, ms: 1, error: ok ? undefined : "refused" },
    { name: "storage", driver: "s3", ok: true, ms: 1 },
  ];
  readiness.record(result(true));
  assertEquals(lines.length, 0);
  readiness.record(result(false));
  readiness.record(result(false));
  assertEquals(lines.length, 1);
  assertMatch(lines[0], /"level":"warn".*not ready: metadata \(postgres\) failing: refused/);
  readiness.record(result(true));
  readiness.record(result(true));
  assertEquals(lines.length, 2);
  assertMatch(lines[1], /"level":"info".*ready: metadata answering again/);
});
