import { assertEquals } from "../../tests/assert.ts";
import type { Digest } from "../oci/digest.ts";
import type { RepositorySnapshot } from "../metadata/metadata_store.ts";
import { companionSubject, manifestOrder } from "./plan.ts";

const digest = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const [image, amd, arm, index, sig, sbom, lone] = ["1", "2", "3", "4", "5", "6", "7"].map(digest);
const layer = digest("a");

function manifest(d: Digest, pushedAt: number, extra: Partial<RepositorySnapshot["manifests"][0]>) {
  return { digest: d, pushedAt, subject: null, children: [], blobs: [], ...extra };
}

Deno.test("companionSubject reads cosign-style tags only", () => {
  assertEquals(companionSubject(`sha256-${"1".repeat(64)}.sig`), image);
  assertEquals(companionSubject(`sha256-${"1".repeat(64)}.att`), image);
  assertEquals(companionSubject(`sha256-${"1".repeat(64)}`), null);
  assertEquals(companionSubject("latest"), null);
});

Deno.test("manifestOrder puts children and subjects first, whatever the push order", () => {
  // Pushed in the worst order: the index, the signature and the SBOM before what they name.
  const snapshot: RepositorySnapshot = {
    manifests: [
      manifest(index, 1, { children: [amd, arm] }),
      manifest(sig, 2, { blobs: [layer] }),
      manifest(sbom, 3, { subject: image }),
      manifest(amd, 4, { blobs: [layer] }),
      manifest(arm, 5, { blobs: [layer] }),
      manifest(image, 6, { blobs: [layer] }),
      manifest(lone, 7, { subject: digest("9") }), // subject not in the repository
    ],
    tags: [
      { name: "multi", digest: index, updatedAt: 1 },
      { name: `sha256-${"1".repeat(64)}.sig`, digest: sig, updatedAt: 2 },
      { name: "v1", digest: image, updatedAt: 6 },
      { name: "latest", digest: image, updatedAt: 6 },
    ],
    links: [],
  };
  const order = manifestOrder(snapshot);
  const position = (d: Digest) => order.findIndex((s) => s.digest === d);
  assertEquals(order.length, 7);
  assertEquals(position(amd) < position(index) && position(arm) < position(index), true);
  assertEquals(position(image) < position(sig), true);
  assertEquals(position(image) < position(sbom), true);
  assertEquals(order[position(image)].tags, ["latest", "v1"]);
  assertEquals(order[position(sig)].subject, image);
  assertEquals(order[position(sbom)].subject, image);
  assertEquals(order[position(lone)].subject, null);
  assertEquals(order[position(index)].children, [amd, arm]);
});
