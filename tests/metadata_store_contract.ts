/**
 * The behaviour every {@link MetadataStore} must show, as one suite run against each
 * implementation (SQLite and PostgreSQL, from `src/metadata/postgres_test.ts`). Each case gets
 * a fresh, empty store from the factory.
 * @module
 */
import { assertEquals, assertOk } from "./assert.ts";
import type { Digest } from "../src/oci/digest.ts";
import { RegistryError } from "../src/oci/errors.ts";
import type { MetadataStore, NewManifest } from "../src/metadata/metadata_store.ts";

/** A fresh store and how to dispose of it. */
export interface StoreHandle {
  store: MetadataStore;
  dispose(): Promise<void>;
}

/** A digest made of one repeated hex character (or a short hex string). */
export const d = (c: string) => `sha256:${c.repeat(64 / c.length)}` as Digest;

/** A small image manifest with the given indexed fields. */
export function manifest(digest: Digest, extra: Partial<NewManifest> = {}): NewManifest {
  const content = new TextEncoder().encode(JSON.stringify({ digest }));
  return {
    digest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    size: content.length,
    content,
    blobs: [],
    manifests: [],
    ...extra,
  };
}

type Case = (store: MetadataStore) => Promise<void>;

const CASES: Record<string, Case> = {
  "tags move, deleting a manifest removes its tags": async (db) => {
    await db.putManifest("r", manifest(d("1")), "latest");
    await db.putManifest("r", manifest(d("2")), "latest");
    await db.putManifest("r", manifest(d("2")), "v2");
    assertEquals(await db.resolveTag("r", "latest"), d("2"));
    assertEquals(await db.resolveTag("r", "nope"), null);
    const tagged = await db.getTaggedManifest("r", "latest");
    assertEquals(tagged, await db.getManifest("r", d("2")));
    assertEquals(tagged?.digest, d("2"));
    assertEquals(await db.getTaggedManifest("r", "nope"), null);
    assertEquals(await db.getTaggedManifest("other", "latest"), null);
    assertEquals((await db.listTags("r", { limit: 10 })).items, ["latest", "v2"]);
    assertEquals(await db.deleteManifest("r", d("2")), true);
    assertEquals(await db.deleteManifest("r", d("2")), false);
    assertEquals(await db.resolveTag("r", "latest"), null);
    assertEquals(await db.getTaggedManifest("r", "latest"), null);
    assertEquals((await db.listTags("r", { limit: 10 })).items, []);
    assertOk(await db.getManifest("r", d("1")));
    await db.putManifest("r", manifest(d("1")), "t");
    assertEquals(await db.deleteTag("r", "t"), true);
    assertEquals(await db.deleteTag("r", "t"), false);
    assertOk(await db.getManifest("r", d("1")), "deleting a tag keeps the manifest");
  },

  "manifest bytes come back exactly, scoped to their repository": async (db) => {
    const content = new Uint8Array(256).map((_, i) => i); // every byte value, NUL included
    await db.putManifest("a", { ...manifest(d("1")), content, size: content.length });
    const got = await db.getManifest("a", d("1"));
    assertEquals(got?.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assertEquals(got?.size, 256);
    assertEquals(got?.content, content);
    assertEquals(await db.getManifest("b", d("1")), null);
    assertEquals(await db.missingManifests("a", [d("1"), d("2")]), [d("2")]);
    assertEquals(await db.missingManifests("b", [d("1")]), [d("1")]);
  },

  "tag and repository pagination in byte order": async (db) => {
    for (const tag of ["v2", "latest", "V1", "a-b", "a_b", "a.b"]) {
      await db.putManifest("r", manifest(d("1")), tag);
    }
    const all = (await db.listTags("r", { limit: 100 })).items;
    assertEquals(all, ["V1", "a-b", "a.b", "a_b", "latest", "v2"]);
    assertEquals(await db.listTags("r", { limit: 2 }), { items: ["V1", "a-b"], more: true });
    assertEquals(await db.listTags("r", { limit: 2, last: "a-b" }), {
      items: ["a.b", "a_b"],
      more: true,
    });
    assertEquals(await db.listTags("r", { limit: 2, last: "a_b" }), {
      items: ["latest", "v2"],
      more: false,
    });
    assertEquals(await db.listTags("missing", { limit: 5 }), { items: [], more: false });
    await db.putManifest("z/one", manifest(d("2")));
    await db.putManifest("B", manifest(d("3")));
    await db.linkBlob("only-blobs", d("4"), 1); // no manifest: not listed
    assertEquals(await db.listRepositories({ limit: 10 }), {
      items: ["B", "r", "z/one"],
      more: false,
    });
    assertEquals(await db.listRepositories({ limit: 1, last: "B" }), {
      items: ["r"],
      more: true,
    });
    assertEquals(await db.allRepositories(), ["B", "only-blobs", "r", "z/one"]);
    assertEquals(await db.repositoryExists("only-blobs"), true);
    assertEquals(await db.repositoryExists("nope"), false);
  },

  "referrers by subject, filtered by artifact type, per repository": async (db) => {
    await db.putManifest("r", manifest(d("1")));
    await db.putManifest(
      "r",
      manifest(d("3"), {
        subject: d("1"),
        artifactType: "application/x.sig",
        annotations: { "org.example": "yes" },
      }),
    );
    await db.putManifest(
      "r",
      manifest(d("4"), { subject: d("1"), artifactType: "application/x.sbom" }),
    );
    await db.putManifest("r", manifest(d("6"), { subject: d("1") }));
    await db.putManifest(
      "other",
      manifest(d("5"), { subject: d("1"), artifactType: "application/x.sig" }),
    );
    const all = await db.referrers("r", d("1"));
    assertEquals(all.map((r) => r.digest), [d("3"), d("4"), d("6")]);
    assertEquals(all[0], {
      digest: d("3"),
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      size: manifest(d("3")).size,
      artifactType: "application/x.sig",
      annotations: { "org.example": "yes" },
    });
    assertEquals("artifactType" in all[2], false);
    assertEquals("annotations" in all[2], false);
    assertEquals((await db.referrers("r", d("1"), "application/x.sig")).map((r) => r.digest), [
      d("3"),
    ]);
    assertEquals(await db.referrers("r", d("1"), "application/x.none"), []);
    assertEquals(await db.referrers("r", d("9")), []);
    assertEquals((await db.referrers("other", d("1"))).map((r) => r.digest), [d("5")]);
  },

  "blob links are per repository": async (db) => {
    await db.linkBlob("a", d("1"), 10);
    assertEquals(await db.linkedBlobSize("a", d("1")), 10);
    assertEquals(await db.linkedBlobSize("b", d("1")), null);
    assertEquals(await db.missingBlobs("a", [d("1"), d("2")]), [d("2")]);
    assertEquals(await db.missingBlobs("nope", [d("1")]), [d("1")]);
    assertEquals(await db.missingBlobs("a", []), []);
    await db.linkBlob("b", d("1"), 10);
    await db.linkBlob("b", d("1"), 10); // linking twice is fine
    assertEquals(await db.repositoriesWithBlob(d("1")), ["a", "b"]);
    assertEquals(await db.repositorySize("b"), 10);
    await db.linkBlob("b", d("2"), 5);
    assertEquals(await db.repositorySize("b"), 15);
    assertEquals(await db.repositorySize("nope"), 0);
    assertEquals(await db.unlinkBlob("a", d("1")), true);
    assertEquals(await db.unlinkBlob("a", d("1")), false);
    assertEquals(await db.linkedBlobSize("b", d("1")), 10);
    assertEquals(await db.blobKnown(d("1")), true);
    assertEquals(await db.blobKnown(d("7")), false);
  },

  "putManifest re-checks references and writes nothing when one is missing": async (db) => {
    await db.linkBlob("r", d("a"), 3);
    const image = manifest(d("1"), { blobs: [d("a"), d("b")] });
    const err = await rejects(() => db.putManifest("r", image, "latest"));
    assertOk(err instanceof RegistryError, `expected RegistryError, got ${err}`);
    assertEquals(err.code, "MANIFEST_BLOB_UNKNOWN");
    assertEquals(err.detail, { digests: [d("b")] });
    assertEquals(await db.getManifest("r", d("1")), null);
    assertEquals(await db.resolveTag("r", "latest"), null);
    const index = manifest(d("2"), { manifests: [d("1")] });
    assertEquals(
      (await rejects(() => db.putManifest("r", index)) as RegistryError).code,
      "MANIFEST_BLOB_UNKNOWN",
    );
    await db.linkBlob("r", d("b"), 4);
    await db.putManifest("r", image, "latest");
    await db.putManifest("r", index, "index");
    assertEquals(await db.parentManifests("r", d("1")), [d("2")]);
    assertEquals(await db.parentManifests("other", d("1")), []);
  },

  "uploads: create, get, touch, idle, delete": async (db) => {
    const before = db.now();
    await db.createUpload("u1", "r");
    assertEquals(await db.repositoryExists("r"), true);
    const record = await db.getUpload("u1");
    assertEquals(record?.id, "u1");
    assertEquals(record?.repository, "r");
    assertOk(record!.startedAt >= before && record!.startedAt <= db.now());
    assertEquals(await db.getUpload("nope"), null);
    assertEquals((await db.idleUploads(db.now() + 1)).map((u) => u.id), ["u1"]);
    assertEquals(await db.idleUploads(before - 1), []);
    await sleep(5);
    const touched = db.now();
    await db.touchUpload("u1");
    assertEquals(await db.idleUploads(touched), []);
    await db.deleteUpload("u1");
    assertEquals(await db.getUpload("u1"), null);
    await db.deleteUpload("u1"); // forgetting twice is fine
  },

  "snapshot shows manifests, references, tags and links": async (db) => {
    await db.linkBlob("r", d("a"), 3);
    await db.linkBlob("r", d("b"), 4);
    await db.putManifest("r", manifest(d("1"), { blobs: [d("a")] }), "latest");
    await db.putManifest("r", manifest(d("2"), { manifests: [d("1")], subject: d("1") }));
    const snap = await db.snapshot("r");
    const byDigest = Object.fromEntries(snap.manifests.map((m) => [m.digest, m]));
    assertEquals(byDigest[d("1")].blobs, [d("a")]);
    assertEquals(byDigest[d("1")].children, []);
    assertEquals(byDigest[d("1")].subject, null);
    assertEquals(byDigest[d("2")].children, [d("1")]);
    assertEquals(byDigest[d("2")].subject, d("1"));
    assertEquals(snap.tags.map((t) => [t.name, t.digest]), [["latest", d("1")]]);
    assertEquals(snap.links.map((l) => [l.digest, l.size]).sort(), [[d("a"), 3], [d("b"), 4]]);
    assertEquals(await db.snapshot("nope"), { manifests: [], tags: [], links: [] });
  },

  "GC guard: deleteTagIf only when unchanged and old": async (db) => {
    await db.putManifest("r", manifest(d("1")), "t");
    await db.putManifest("r", manifest(d("2")));
    assertEquals(await db.deleteTagIf("r", "t", d("2"), db.now() + 1), false, "other digest");
    assertEquals(await db.deleteTagIf("r", "t", d("1"), 0), false, "moved after cutoff");
    assertEquals(await db.deleteTagIf("r", "t", d("1"), db.now() + 1), true);
    assertEquals(await db.resolveTag("r", "t"), null);
  },

  "conditional tag write: moves only from where the tag is, else writes nothing": async (db) => {
    assertEquals(await db.putManifest("r", manifest(d("1")), "t", { ifTagAt: null }), true);
    assertEquals(await db.resolveTag("r", "t"), d("1"), "absent: created");
    assertEquals(await db.putManifest("r", manifest(d("2")), "t", { ifTagAt: null }), false);
    assertEquals(await db.putManifest("r", manifest(d("2")), "t", { ifTagAt: d("1") }), true);
    assertEquals(await db.resolveTag("r", "t"), d("2"));
    // Another writer moves the tag after the conditional writer read it at 2.
    assertEquals(await db.putManifest("r", manifest(d("3")), "t"), true);
    assertEquals(await db.putManifest("r", manifest(d("4")), "t", { ifTagAt: d("2") }), false);
    assertEquals(await db.resolveTag("r", "t"), d("3"), "the other writer's digest stays");
    assertEquals(await db.getManifest("r", d("4")), null, "nothing written, not even the bytes");
    assertEquals(await db.missingManifests("r", [d("4")]), [d("4")]);
    // A conditional move stamps the tag as moved now (GC's deleteTagIf sees it as recent).
    await sleep(2);
    const before = db.now();
    assertEquals(await db.putManifest("r", manifest(d("4")), "t", { ifTagAt: d("3") }), true);
    assertEquals(await db.deleteTagIf("r", "t", d("4"), before), false, "moved after cutoff");
    // A deleted tag is not brought back by a move from where it was.
    assertEquals(await db.deleteTag("r", "t"), true);
    assertEquals(await db.putManifest("r", manifest(d("5")), "t", { ifTagAt: d("4") }), false);
    assertEquals(await db.resolveTag("r", "t"), null);
    // Without a tag the condition has nothing to guard; in a new repository, an absent tag.
    assertEquals(await db.putManifest("r", manifest(d("5")), undefined, { ifTagAt: d("9") }), true);
    assertOk(await db.getManifest("r", d("5")));
    assertEquals(await db.putManifest("new", manifest(d("6")), "t", { ifTagAt: d("1") }), false);
    assertEquals(await db.repositoryExists("new"), false, "a refused write creates nothing");
    assertEquals(await db.putManifest("new", manifest(d("6")), "t", { ifTagAt: null }), true);
    assertEquals(await db.resolveTag("new", "t"), d("6"));
  },

  "GC guard: deleteUntaggedManifest spares tagged, indexed and recent manifests": async (db) => {
    await db.putManifest("r", manifest(d("1")), "keep");
    await db.putManifest("r", manifest(d("2")));
    await db.putManifest("r", manifest(d("3"), { manifests: [d("2")] }));
    await db.putManifest("r", manifest(d("4")));
    const later = db.now() + 1;
    assertEquals(await db.deleteUntaggedManifest("r", d("1"), later), false, "tagged");
    assertEquals(await db.deleteUntaggedManifest("r", d("2"), later), false, "listed by index");
    assertEquals(await db.deleteUntaggedManifest("r", d("4"), 0), false, "pushed after cutoff");
    assertEquals(await db.deleteUntaggedManifest("nope", d("4"), later), false);
    assertEquals(await db.deleteUntaggedManifest("r", d("4"), later), true);
    assertEquals(await db.deleteUntaggedManifest("r", d("3"), later), true);
    assertEquals(await db.deleteUntaggedManifest("r", d("2"), later), true, "index gone");
    assertEquals(await db.getManifest("r", d("2")), null);
    assertOk(await db.getManifest("r", d("1")));
    // Manifest bytes no repository holds any more go with deleteOrphanManifests.
    assertEquals(await db.deleteOrphanManifests(), 3);
    assertEquals(await db.deleteOrphanManifests(), 0);
  },

  "GC guard: unlinkUnusedBlob spares used and recent links": async (db) => {
    await db.linkBlob("r", d("a"), 1);
    await db.linkBlob("r", d("b"), 1);
    await db.putManifest("r", manifest(d("1"), { blobs: [d("a")] }));
    const later = db.now() + 1;
    assertEquals(await db.unlinkUnusedBlob("r", d("a"), later), false, "used by a manifest");
    assertEquals(await db.unlinkUnusedBlob("r", d("b"), 0), false, "linked after cutoff");
    assertEquals(await db.unlinkUnusedBlob("nope", d("b"), later), false);
    assertEquals(await db.unlinkUnusedBlob("r", d("b"), later), true);
    assertEquals(await db.linkedBlobSize("r", d("b")), null);
    await db.deleteManifest("r", d("1"));
    assertEquals(await db.unlinkUnusedBlob("r", d("a"), later), true, "manifest gone");
  },

  "GC guard: orphanBlobs and deleteBlobIfOrphan re-check links and references": async (db) => {
    await db.linkBlob("r", d("a"), 1);
    await db.linkBlob("r", d("b"), 2);
    await db.linkBlob("r", d("c"), 3);
    await db.putManifest("r", manifest(d("1"), { blobs: [d("c")] }));
    await db.unlinkBlob("r", d("a"));
    await db.unlinkBlob("r", d("c")); // still referenced by manifest 1
    const later = db.now() + 1;
    assertEquals(await db.orphanBlobs(later), [{ digest: d("a"), size: 1 }]);
    assertEquals(await db.orphanBlobs(0), []);
    assertEquals(await db.deleteBlobIfOrphan(d("b")), false, "linked");
    assertEquals(await db.deleteBlobIfOrphan(d("c")), false, "referenced");
    await db.linkBlob("s", d("a"), 1); // re-linked before GC got to it
    assertEquals(await db.deleteBlobIfOrphan(d("a")), false, "re-linked");
    await db.unlinkBlob("s", d("a"));
    assertEquals(await db.deleteBlobIfOrphan(d("a")), true);
    assertEquals(await db.deleteBlobIfOrphan(d("a")), false, "already gone");
    assertEquals(await db.blobKnown(d("a")), false);
    await db.linkBlob("r", d("a"), 1); // a blob can come back after GC
    assertEquals(await db.linkedBlobSize("r", d("a")), 1);
  },

  "an orphaned manifest can be pushed again": async (db) => {
    await db.putManifest("r", manifest(d("1"), { subject: d("9") }), "t");
    await db.deleteManifest("r", d("1"));
    await db.putManifest("r", manifest(d("1"), { subject: d("9") }), "t");
    assertEquals(await db.resolveTag("r", "t"), d("1"));
    assertEquals((await db.referrers("r", d("9"))).length, 1);
  },
};

/**
 * Runs every contract case as a step of `t`, each on a fresh store from `open`.
 *
 * @example
 * ```ts
 * Deno.test("contract: sqlite", (t) =>
 *   runMetadataStoreContract(t, () => {
 *     const store = SqliteMetadataStore.open(":memory:");
 *     return Promise.resolve({ store, dispose: () => Promise.resolve(store.close()) });
 *   }));
 * ```
 */
export async function runMetadataStoreContract(
  t: Deno.TestContext,
  open: () => Promise<StoreHandle>,
): Promise<void> {
  for (const [title, body] of Object.entries(CASES)) {
    await t.step(title, async () => {
      const handle = await open();
      try {
        await body(handle.store);
      } finally {
        await handle.dispose();
      }
    });
  }
}

/** The error `fn` fails with, thrown or rejected (SQLite's store throws synchronously). */
async function rejects(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
