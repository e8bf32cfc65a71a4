/**
 * The policy plugin against a real server: a signed multi-platform index passes for readers,
 * and so do its children (pulled by digest after the index); an unsigned image is refused with
 * the rule's name; pushers are exempt.
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { startRegistry, writerAndReaderAuth } from "../../tests/harness.ts";
import { clientFor, makeKeys, pushTestImage, signImage } from "../../tests/sync_fixtures.ts";

Deno.test("policy: signed index and its children pass, unsigned images are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-policy-" });
  try {
    const keys = await makeKeys(dir);
    const registry = await startRegistry({
      dataDir: join(dir, "data"),
      config: {
        auth: await writerAndReaderAuth(dir),
        plugins: {
          cosign: { keys: [{ name: "release", key: keys.publicPath }] },
          policy: {
            rules: [{ name: "signed-only", repositories: ["prod/**"], signedBy: ["release"] }],
          },
        },
      },
    });
    try {
      const alice = clientFor(registry.host, { username: "alice", password: "alice-pw" });
      const index = await pushTestImage(alice, "prod/app", "v1", {
        platforms: ["linux/amd64", "linux/arm64"],
      });
      await signImage(alice, "prod/app", index, keys.key, `${registry.host}/prod/app`);
      const unsigned = await pushTestImage(alice, "prod/app", "unsigned");

      const pull = async (reference: string, user = "reader:reader-pw") => {
        const response = await fetch(`${registry.url}/v2/prod/app/manifests/${reference}`, {
          headers: {
            Authorization: `Basic ${btoa(user)}`,
            Accept:
              "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
          },
        });
        const body = response.status === 200 ? undefined : await response.json();
        if (!body) await response.body?.cancel();
        return { status: response.status, body };
      };
      assertEquals((await pull("v1")).status, 200);
      for (const child of index.children) assertEquals((await pull(child.digest)).status, 200);
      const refused = await pull("unsigned");
      assertEquals(refused.status, 403);
      assertEquals(refused.body.errors[0].code, "DENIED");
      assertMatch(refused.body.errors[0].message, /policy "signed-only"/);
      assertEquals((await pull(unsigned.digest)).status, 403);
      assertEquals((await pull("unsigned", "alice:alice-pw")).status, 200, "pushers are exempt");
    } finally {
      await registry.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
