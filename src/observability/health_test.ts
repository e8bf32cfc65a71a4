import { assertEquals } from "../../tests/assert.ts";
import { SqliteMetadataStore } from "../metadata/sqlite.ts";
import { FilesystemBlobStore } from "../storage/filesystem.ts";
import { metadataCheck, runChecks, storageCheck } from "./health.ts";

Deno.test("checks pass on working stores and leave nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  const metadata = SqliteMetadataStore.open(":memory:");
  try {
    const store = await FilesystemBlobStore.open(dir);
    const results = await runChecks([metadataCheck(metadata), storageCheck(store)]);
    assertEquals(results, [{ name: "metadata", ok: true }, { name: "storage", ok: true }]);
    assertEquals(await store.listUploads(), []);
  } finally {
    metadata.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing or hanging check is reported by name", async () => {
  const metadata = SqliteMetadataStore.open(":memory:");
  metadata.close(); // a closed database refuses queries
  let release = () => {};
  const results = await runChecks([
    metadataCheck(metadata),
    { name: "slow", check: () => new Promise<void>((resolve) => release = resolve) },
    { name: "fine", check: () => Promise.resolve() },
  ], 50);
  release();
  assertEquals(results.map((r) => [r.name, r.ok]), [["metadata", false], ["slow", false], [
    "fine",
    true,
  ]]);
  assertEquals(results[1].error, "no answer within 50 ms");
});
