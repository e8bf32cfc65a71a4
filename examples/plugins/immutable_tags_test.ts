/**
 * The example plugin loaded by a real server from its path in the config.
 */
import { assertEquals } from "../../tests/assert.ts";
import { startRegistry } from "../../tests/harness.ts";
import { errorCode, pushImage, putManifest } from "../../tests/oci_client.ts";

Deno.test("example plugin: immutable release tags and a push audit", async () => {
  const registry = await startRegistry({
    config: {
      plugins: {
        external: [new URL("./immutable_tags.ts", import.meta.url).pathname],
        "immutable-tags": { pattern: "^v\\d+$" },
      },
    },
  });
  try {
    const first = await pushImage(registry.url, "demo/app", "v1");
    const second = await pushImage(registry.url, "demo/app", "latest");
    const again = await putManifest(registry.url, "demo/app", "latest", first.manifest);
    assertEquals(again.response.status, 201, "non-release tags may move");
    const moved = await putManifest(registry.url, "demo/app", "v1", second.manifest);
    assertEquals(moved.response.status, 403);
    assertEquals(JSON.parse(moved.text).errors[0].code, "DENIED");
    const still = await fetch(`${registry.url}/v2/demo/app/manifests/v1`);
    assertEquals(still.headers.get("docker-content-digest"), first.digest);
    await still.body?.cancel();

    const audit = await fetch(
      `${registry.url}/wharf/v1/plugins/immutable-tags/audit?repository=demo/app`,
    );
    const body = await audit.json();
    assertEquals(body.pushes.map((p: { tag: string }) => p.tag), ["v1", "latest", "latest"]);
    const bad = await fetch(`${registry.url}/wharf/v1/plugins/immutable-tags/audit?repository=Bad`);
    assertEquals(await errorCode(bad), "NAME_INVALID");
  } finally {
    await registry.close();
  }
});
