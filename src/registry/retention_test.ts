import { assertEquals } from "../../tests/assert.ts";
import type { Digest } from "../oci/digest.ts";
import { tagsToDrop } from "./retention.ts";

const d = `sha256:${"1".repeat(64)}` as Digest;
const tags = [
  { name: "v1", digest: d, updatedAt: 1 },
  { name: "v2", digest: d, updatedAt: 2 },
  { name: "v3", digest: d, updatedAt: 3 },
  { name: "latest", digest: d, updatedAt: 0 },
  { name: `sha256-${"1".repeat(64)}.sig`, digest: d, updatedAt: 0 },
];

Deno.test("retention keeps the newest N and protected tags, never attachment tags", () => {
  const matches = () => true;
  assertEquals(tagsToDrop(tags, { matches, keepLast: 2 }).map((t) => t.name), ["v1", "latest"]);
  assertEquals(
    tagsToDrop(tags, { matches, keepLast: 1, keepTags: /^latest$/ }).map((t) => t.name),
    ["v2", "v1"],
  );
  assertEquals(tagsToDrop(tags, { matches }), []);
});
