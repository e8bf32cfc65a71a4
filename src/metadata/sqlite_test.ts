import { assertEquals } from "../../tests/assert.ts";
import type { Digest } from "../oci/digest.ts";
import { MIGRATIONS } from "./migrations.ts";
import type { NewManifest } from "./metadata_store.ts";
import { SqliteMetadataStore } from "./sqlite.ts";

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

function manifest(digest: Digest, extra: Partial<NewManifest> = {}): NewManifest {
  return {
    digest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    size: 2,
    content: new TextEncoder().encode("{}"),
    blobs: [],
    manifests: [],
    ...extra,
  };
}

Deno.test("sqlite: migrations run once and survive reopening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/wharf.db`;
    const first = SqliteMetadataStore.open(path);
    assertEquals(first.schemaVersion, MIGRATIONS.length);
    await first.linkBlob("a/b", d("1"), 5);
    first.close();
    const second = SqliteMetadataStore.open(path);
    assertEquals(second.schemaVersion, MIGRATIONS.length);
    assertEquals(await second.linkedBlobSize("a/b", d("1")), 5);
    second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite: tags move, deleting a manifest removes its tags, referrers filter", async () => {
  const db = SqliteMetadataStore.open(":memory:");
  try {
    await db.putManifest("r", manifest(d("1")), "latest");
    await db.putManifest("r", manifest(d("2")), "latest");
    await db.putManifest("r", manifest(d("2")), "v2");
    assertEquals(await db.resolveTag("r", "latest"), d("2"));
    assertEquals((await db.listTags("r", { limit: 10 })).items, ["latest", "v2"]);
    assertEquals(await db.listTags("r", { limit: 1 }), { items: ["latest"], more: true });
    assertEquals(await db.listTags("r", { limit: 1, last: "latest" }), {
      items: ["v2"],
      more: false,
    });
    assertEquals(await db.deleteManifest("r", d("2")), true);
    assertEquals(await db.resolveTag("r", "latest"), null);
    assertEquals((await db.listTags("r", { limit: 10 })).items, []);
    assertEquals(await db.getManifest("r", d("1")) !== null, true);

    await db.putManifest(
      "r",
      manifest(d("3"), { subject: d("1"), artifactType: "application/x.sig" }),
    );
    await db.putManifest(
      "r",
      manifest(d("4"), { subject: d("1"), artifactType: "application/x.sbom" }),
    );
    await db.putManifest(
      "other",
      manifest(d("5"), { subject: d("1"), artifactType: "application/x.sig" }),
    );
    assertEquals((await db.referrers("r", d("1"))).map((r) => r.digest), [d("3"), d("4")]);
    assertEquals((await db.referrers("r", d("1"), "application/x.sig")).map((r) => r.digest), [
      d("3"),
    ]);
    assertEquals(await db.referrers("r", d("9")), []);
    assertEquals((await db.listRepositories({ limit: 10 })).items, ["other", "r"]);
  } finally {
    db.close();
  }
});

Deno.test("sqlite: blob links are per repository", async () => {
  const db = SqliteMetadataStore.open(":memory:");
  try {
    await db.linkBlob("a", d("1"), 10);
    assertEquals(await db.linkedBlobSize("b", d("1")), null);
    assertEquals(await db.missingBlobs("a", [d("1"), d("2")]), [d("2")]);
    await db.linkBlob("b", d("1"), 10);
    assertEquals(await db.repositoriesWithBlob(d("1")), ["a", "b"]);
    assertEquals(await db.unlinkBlob("a", d("1")), true);
    assertEquals(await db.unlinkBlob("a", d("1")), false);
    assertEquals(await db.linkedBlobSize("b", d("1")), 10);
  } finally {
    db.close();
  }
});
