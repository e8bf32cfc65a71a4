/**
 * Signatures end to end with the sigstore-enabled upstream skopeo (`SKOPEO_SIGSTORE`, default
 * `../shared/bin/skopeo`): skopeo signs while pushing into Wharf; the cosign plugin marks the
 * signature verified with the matching key and unverified under another; skopeo verifies it
 * when pulling back through a `sigstoreSigned` policy; the policy plugin lets the signed image
 * through and blocks the unsigned one for readers.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { runWharf, startRegistry, writerAndReaderAuth } from "./harness.ts";
import { initLayout, tagLayout, writeImage } from "./oci_layout.ts";

const SKOPEO = Deno.env.get("SKOPEO_SIGSTORE") ??
  new URL("../../shared/bin/skopeo", import.meta.url).pathname;
const available = await Deno.stat(SKOPEO).then(() => true, () => false);
if (!available) {
  console.warn(
    `signatures_e2e_test: skipped — no sigstore-enabled skopeo at ${SKOPEO} (set SKOPEO_SIGSTORE)`,
  );
}

async function skopeo(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(SKOPEO, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  return {
    ok: out.success,
    output: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "signatures: skopeo signs into Wharf, plugins verify and enforce, skopeo verifies",
  ignore: !available,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wharf-sig-" });
    const data = join(dir, "data");
    try {
      const passphrase = join(dir, "passphrase");
      await Deno.writeTextFile(passphrase, "wharf-test\n");
      for (const prefix of ["good", "other"]) {
        const made = await skopeo([
          "generate-sigstore-key",
          "--output-prefix",
          join(dir, prefix),
          "--passphrase-file",
          passphrase,
        ]);
        assertOk(made.ok, made.output);
      }
      const registry = await startRegistry({
        dataDir: data,
        config: {
          auth: await writerAndReaderAuth(dir),
          plugins: {
            cosign: {
              keys: [
                { name: "good", key: join(dir, "good.pub"), repositories: ["prod/**"] },
                { name: "other", key: join(dir, "other.pub"), repositories: ["elsewhere/**"] },
              ],
            },
            policy: {
              rules: [{ name: "signed-prod", repositories: ["prod/**"], signedBy: ["good"] }],
            },
          },
        },
      });
      try {
        const host = registry.host;
        const layout = join(dir, "layout");
        await initLayout(layout);
        const image = await writeImage(layout, { layerSizes: [2048, 1024] });
        await tagLayout(layout, "v1", image.descriptor);
        const digest = image.descriptor.digest;
        const registriesD = join(dir, "registries.d");
        await Deno.mkdir(registriesD);
        await Deno.writeTextFile(
          join(registriesD, "wharf.yaml"),
          `docker:\n  ${host}:\n    use-sigstore-attachments: true\n`,
        );
        const insecure = join(dir, "insecure.json");
        await Deno.writeTextFile(
          insecure,
          JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
        );
        const common = ["--policy", insecure, "--registries.d", registriesD];

        const push = async (target: string, sign: string | null) => {
          const args = [
            "copy",
            ...common,
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alice-pw",
          ];
          if (sign) {
            args.push("--sign-by-sigstore-private-key", sign, "--sign-passphrase-file", passphrase);
          }
          const result = await skopeo([...args, `oci:${layout}:v1`, `docker://${host}/${target}`]);
          assertOk(result.ok, result.output);
        };
        await push("prod/signed:v1", join(dir, "good.private"));
        await push("prod/unsigned:v1", null);
        await push("elsewhere/signed:v1", join(dir, "good.private"));

        const artifacts = async (repo: string) => {
          const response = await fetch(`${registry.url}/wharf/v1/${repo}/artifacts/${digest}`, {
            headers: { Authorization: `Basic ${btoa("reader:reader-pw")}` },
          });
          assertEquals(response.status, 200);
          return (await response.json()).artifacts;
        };
        const signed = await artifacts("prod/signed");
        assertEquals(signed.length, 1);
        assertEquals(signed[0].kind, "signature");
        assertEquals(signed[0].status, "verified");
        assertEquals(signed[0].detail.keys, ["good"]);
        const foreign = await artifacts("elsewhere/signed");
        assertEquals(foreign[0].status, "unverified", "signed by good, checked against other");
        assertEquals(await artifacts("prod/unsigned"), []);

        // The CLI shows the same as the API.
        const cli = await runWharf([
          "artifacts",
          `${host}/prod/signed:v1`,
          "-u",
          "reader",
          "-p",
          "reader-pw",
        ]);
        const shown = cli.stdout;
        assertEquals(cli.code, 0, cli.stderr);
        assertMatch(shown, new RegExp(`prod/signed@${digest}`));
        assertMatch(shown, /signature\s+verified\s+cosign\s+sha256:[0-9a-f]{64} keys=good/);

        const verifyPolicy = join(dir, "verify.json");
        const requirement = (key: string) => [{
          type: "sigstoreSigned",
          keyPath: join(dir, key),
          signedIdentity: { type: "matchRepository" },
        }];
        await Deno.writeTextFile(
          verifyPolicy,
          JSON.stringify({
            default: [{ type: "reject" }],
            transports: {
              docker: {
                [`${host}/prod/signed`]: requirement("good.pub"),
                [`${host}/prod/unsigned`]: requirement("good.pub"),
                [`${host}/elsewhere/signed`]: requirement("other.pub"),
              },
            },
          }),
        );
        const pull = (repo: string, creds: string) =>
          skopeo([
            "copy",
            "--policy",
            verifyPolicy,
            "--registries.d",
            registriesD,
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            `docker://${host}/${repo}:v1`,
            `dir:${join(dir, `out-${crypto.randomUUID()}`)}`,
          ]);
        // Pushers are exempt from the pull policy; skopeo's own check still applies.
        const verified = await pull("prod/signed", "alice:alice-pw");
        assertOk(verified.ok, verified.output);
        const unsigned = await pull("prod/unsigned", "alice:alice-pw");
        assertEquals(unsigned.ok, false);
        assertMatch(unsigned.output, /signature|sigstore/i);
        const wrongKey = await pull("elsewhere/signed", "alice:alice-pw");
        assertEquals(wrongKey.ok, false);

        // The policy plugin: readers get the signed image, and 403 naming the rule otherwise.
        const readerSigned = await pull("prod/signed", "reader:reader-pw");
        assertOk(readerSigned.ok, readerSigned.output);
        const blocked = await fetch(`${registry.url}/v2/prod/unsigned/manifests/v1`, {
          headers: { Authorization: `Basic ${btoa("reader:reader-pw")}` },
        });
        assertEquals(blocked.status, 403);
        const body = await blocked.json();
        assertEquals(body.errors[0].code, "DENIED");
        assertMatch(body.errors[0].message, /signed-prod/);
        const readerUnsigned = await pull("prod/unsigned", "reader:reader-pw");
        assertEquals(readerUnsigned.ok, false);
      } finally {
        await registry.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
