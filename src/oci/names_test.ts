import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { isValidName, isValidTag, parseReference } from "./names.ts";
import { RegistryError } from "./errors.ts";

Deno.test("repository names follow the spec grammar", () => {
  for (const ok of ["a", "library/alpine", "a.b_c__d--e/f-1", "x/y/z"]) {
    assertEquals(isValidName(ok), true, ok);
  }
  for (
    const bad of ["", "A", "a/", "/a", "a//b", "a..b", "a_-b", "-a", "a/../b", "a".repeat(256)]
  ) {
    assertEquals(isValidName(bad), false, bad);
  }
});

Deno.test("tags follow the spec grammar; cosign tags are tags", () => {
  const sig = `sha256-${"a".repeat(64)}.sig`;
  assertEquals(isValidTag(sig), true);
  assertEquals(isValidTag("v1.0"), true);
  assertEquals(isValidTag("_x"), true);
  assertEquals(isValidTag(".x"), false);
  assertEquals(isValidTag("a".repeat(129)), false);
  assertEquals(parseReference(sig, "read"), { kind: "tag", tag: sig });
  assertEquals(parseReference(`sha256-${"a".repeat(64)}`, "read").kind, "tag");
});

Deno.test("references: digests are validated, invalid tags are unknown on read", () => {
  assertEquals(parseReference(`sha256:${"b".repeat(64)}`, "read").kind, "digest");
  assertEquals(
    assertThrows(() => parseReference("sha256:zz", "read"), RegistryError).code,
    "DIGEST_INVALID",
  );
  assertEquals(assertThrows(() => parseReference("!bad", "read"), RegistryError).status, 404);
  assertEquals(assertThrows(() => parseReference("!bad", "write"), RegistryError).status, 400);
});
