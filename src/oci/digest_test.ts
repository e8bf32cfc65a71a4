import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { digestOf, parseDigest } from "./digest.ts";
import { RegistryError } from "./errors.ts";

Deno.test("parseDigest accepts sha256 and sha512", () => {
  const d = digestOf(new TextEncoder().encode("hello"));
  assertEquals(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  assertEquals(parseDigest(d).algorithm, "sha256");
  assertEquals(parseDigest(digestOf(new Uint8Array(), "sha512")).algorithm, "sha512");
});

Deno.test("parseDigest rejects malformed, unsupported and wrongly sized digests", () => {
  for (
    const bad of [
      "",
      "sha256",
      "sha256:",
      "sha256:abc",
      "sha256:" + "A".repeat(64),
      "md5:" + "a".repeat(32),
      "sha256:" + "a".repeat(63) + "/",
      "../../etc/passwd",
    ]
  ) {
    const err = assertThrows(() => parseDigest(bad), RegistryError);
    assertEquals(err.code, "DIGEST_INVALID");
  }
});
