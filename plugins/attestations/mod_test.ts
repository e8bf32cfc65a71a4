/**
 * The attestations plugin against a real server: `wharf attest` pushes DSSE attestations (as a
 * `.att` tag and as a referrer); the plugin indexes their predicate types and verifies them
 * with the trusted key, and the policy plugin's `attestedWith` rule lets only attested images
 * through to readers.
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { runWharf, startRegistry, writerAndReaderAuth } from "../../tests/harness.ts";
import { pushImage } from "../../tests/oci_client.ts";

const SLSA = "https://slsa.dev/provenance/v0.2";

async function wharf(args: string[], env: Record<string, string>) {
  const result = await runWharf(args, env);
  if (result.code !== 0) throw new Error(result.stderr);
}

Deno.test("attestations: indexed by predicate type, verified with the key, enforced by policy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-att-" });
  const env = {
    WHARF_PASSWORD: "pw",
    WHARF_REGISTRY_USERNAME: "alice",
    WHARF_REGISTRY_PASSWORD: "alice-pw",
  };
  try {
    await wharf(["keys", "generate", "--output-prefix", join(dir, "good")], env);
    await wharf(["keys", "generate", "--output-prefix", join(dir, "other")], env);
    const predicate = join(dir, "provenance.json");
    await Deno.writeTextFile(
      predicate,
      JSON.stringify({ builder: { id: "https://ci.example/builder" } }),
    );
    const registry = await startRegistry({
      dataDir: join(dir, "data"),
      config: {
        auth: await writerAndReaderAuth(dir),
        plugins: {
          attestations: { keys: [{ name: "good", key: join(dir, "good.pub") }] },
          policy: {
            rules: [{ name: "provenance", repositories: ["att/**"], attestedWith: [SLSA] }],
          },
        },
      },
    });
    const alice = { Authorization: `Basic ${btoa("alice:alice-pw")}` };
    const reader = { Authorization: `Basic ${btoa("reader:reader-pw")}` };
    try {
      const base = registry.url;
      const images: Record<string, string> = {};
      for (const repo of ["att/tagged", "att/referrer", "att/foreign", "att/none"]) {
        images[repo] = (await pushImage(base, repo, "v1", { layers: 1, headers: alice })).digest;
      }
      await wharf([
        "attest",
        "--key",
        join(dir, "good.key"),
        "--predicate",
        predicate,
        "--type",
        "slsaprovenance",
        `${registry.host}/att/tagged:v1`,
      ], env);
      await wharf([
        "attest",
        "--referrers",
        "--key",
        join(dir, "good.key"),
        "--predicate",
        predicate,
        "--type",
        "slsaprovenance",
        `${registry.host}/att/referrer:v1`,
      ], env);
      await wharf([
        "attest",
        "--key",
        join(dir, "other.key"),
        "--predicate",
        predicate,
        "--type",
        "slsaprovenance",
        `${registry.host}/att/foreign:v1`,
      ], env);

      const records = async (repo: string) => {
        const response = await fetch(`${base}/wharf/v1/${repo}/artifacts/${images[repo]}`, {
          headers: reader,
        });
        return (await response.json()).artifacts;
      };
      for (const repo of ["att/tagged", "att/referrer"]) {
        const [record] = await records(repo);
        assertEquals(record.kind, "attestation", repo);
        assertEquals(record.type, SLSA);
        assertEquals(record.status, "verified");
        assertEquals(record.detail.key, "good");
      }
      assertEquals((await records("att/tagged"))[0].detail.via, "tag");
      assertEquals((await records("att/referrer"))[0].detail.via, "referrer");
      assertEquals((await records("att/foreign"))[0].status, "unverified");

      const pull = async (repo: string) => {
        const response = await fetch(`${base}/v2/${repo}/manifests/v1`, { headers: reader });
        const body = response.status === 200 ? null : await response.json();
        if (body === null) await response.body?.cancel();
        return { status: response.status, body };
      };
      assertEquals((await pull("att/tagged")).status, 200);
      assertEquals((await pull("att/referrer")).status, 200);
      const foreign = await pull("att/foreign");
      assertEquals(foreign.status, 403);
      assertMatch(foreign.body.errors[0].message, /policy "provenance"/);
      assertEquals((await pull("att/none")).status, 403);
      // Pushers are exempt so that they can attest; the attestation itself stays readable.
      const exempt = await fetch(`${base}/v2/att/none/manifests/v1`, { headers: alice });
      assertEquals(exempt.status, 200);
      await exempt.body?.cancel();
      const attTag = `${images["att/tagged"].replace(":", "-")}.att`;
      const attestation = await fetch(`${base}/v2/att/tagged/manifests/${attTag}`, {
        headers: reader,
      });
      assertEquals(attestation.status, 200);
      await attestation.body?.cancel();
    } finally {
      await registry.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
