import { assertEquals } from "../../tests/assert.ts";
import { acceptsManifest } from "./negotiation.ts";
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";

Deno.test("acceptsManifest serves what was asked for, or anything when nothing was", () => {
  assertEquals(acceptsManifest(null, OCI_MANIFEST), true);
  assertEquals(acceptsManifest("application/json", OCI_INDEX), true);
  assertEquals(acceptsManifest(`${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9`, OCI_MANIFEST), true);
  assertEquals(acceptsManifest(`${DOCKER_MANIFEST}, */*`, OCI_INDEX), true);
  assertEquals(acceptsManifest(DOCKER_MANIFEST, OCI_INDEX), false);
});
