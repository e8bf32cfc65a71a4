import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { formatImageReference, parseImageReference, ReferenceError } from "./reference.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

Deno.test("reference: registry, repository, tag, digest and Docker defaults", () => {
  assertEquals(parseImageReference("127.0.0.1:5000/team/app:v1"), {
    registry: "127.0.0.1:5000",
    repository: "team/app",
    tag: "v1",
  });
  assertEquals(parseImageReference(`localhost/app@${DIGEST}`), {
    registry: "localhost",
    repository: "app",
    digest: DIGEST,
  });
  assertEquals(parseImageReference(`reg.example/a/b:t@${DIGEST}`).tag, "t");
  assertEquals(parseImageReference("alpine"), {
    registry: "docker.io",
    repository: "library/alpine",
    tag: "latest",
  });
  assertEquals(parseImageReference("user/app:1").registry, "docker.io");
  assertEquals(formatImageReference(parseImageReference("r.io/x:1")), "r.io/x:1");
  for (const bad of ["", "r.io/UPPER:1", "r.io/x:bad tag", "r.io/x@sha256:zz"]) {
    assertThrows(() => parseImageReference(bad), ReferenceError);
  }
});
