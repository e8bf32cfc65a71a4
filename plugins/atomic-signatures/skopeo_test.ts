/**
 * End to end with the real clients (Debian `skopeo` and `gpg`): `skopeo copy --sign-by` writes
 * a GPG signature through the extension API, and `skopeo copy` under a `signedBy` policy reads
 * and verifies it (and refuses an unsigned image). Skipped, with the reason, when skopeo or gpg
 * is missing.
 *
 * containers/image uses the API only when `GET /v2/` answers `X-Registry-Supports-Signatures: 1`,
 * which the plugin advertises; the test also checks that header.
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { startRegistry } from "../../tests/harness.ts";
import { initLayout, tagLayout, writeImage } from "../../tests/oci_layout.ts";

function available(command: string): boolean {
  try {
    return new Deno.Command(command, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const missing = ["skopeo", "gpg"].filter((c) => !available(c));
if (missing.length > 0) {
  console.warn(`atomic-signatures skopeo_test: skipped — ${missing.join(", ")} not installed`);
}

async function run(command: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  return { ok: out.success, stdout: new TextDecoder().decode(out.stdout), stderr };
}

async function mustRun(command: string, args: string[], env: Record<string, string>) {
  const result = await run(command, args, env);
  if (!result.ok) throw new Error(`${command} ${args.join(" ")} failed:\n${result.stderr}`);
  return result.stdout;
}

Deno.test({
  name: "atomic signatures: skopeo signs through the extension API and verifies on pull",
  ignore: missing.length > 0,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "wharf-atomic-e2e-" });
    const gnupg = join(tmp, "gnupg");
    await Deno.mkdir(gnupg, { mode: 0o700 });
    const env = { GNUPGHOME: gnupg };
    const registry = await startRegistry();
    try {
      const ping = await fetch(`${registry.url}/v2/`);
      await ping.body?.cancel();
      assertEquals(ping.headers.get("x-registry-supports-signatures"), "1");
      await mustRun("gpg", [
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Wharf Test <wharf-test@example.com>",
        "ed25519",
        "sign",
        "never",
      ], env);
      const colons = await mustRun("gpg", ["--list-keys", "--with-colons"], env);
      const fingerprint = colons.match(/^fpr:+([0-9A-F]{40}):/m)![1];
      const publicKey = join(tmp, "key.gpg");
      await mustRun("gpg", ["--output", publicKey, "--export", fingerprint], env);

      const src = join(tmp, "src");
      await initLayout(src);
      for (const tag of ["signed", "unsigned"]) {
        await tagLayout(src, tag, (await writeImage(src, { layerSizes: [2048] })).descriptor);
      }
      const registriesD = join(tmp, "registries.d");
      await Deno.mkdir(registriesD);
      const skopeo = (...args: string[]) =>
        run("skopeo", ["--registries.d", registriesD, ...args], env);
      const push = async (tag: string, ...flags: string[]) => {
        const result = await skopeo(
          "--insecure-policy",
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          ...flags,
          `oci:${src}:${tag}`,
          `docker://${registry.host}/demo/app:${tag}`,
        );
        if (!result.ok) throw new Error(`skopeo push failed:\n${result.stderr}`);
      };
      await push("signed", "--sign-by", fingerprint);
      await push("unsigned");

      const digest = (await (await fetch(`${registry.url}/v2/demo/app/manifests/signed`, {
        method: "HEAD",
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      })).headers.get("docker-content-digest"))!;
      const listed = await (await fetch(
        `${registry.url}/extensions/v2/demo/app/signatures/${digest}`,
      )).json();
      assertEquals(listed.signatures.length, 1);
      assertEquals(listed.signatures[0].schemaVersion, 2);
      assertEquals(listed.signatures[0].type, "atomic");
      assertMatch(listed.signatures[0].name, new RegExp(`^${digest}@[0-9a-f]{32}$`));
      const records = (await (await fetch(
        `${registry.url}/wharf/v1/demo/app/artifacts/${digest}`,
      )).json()).artifacts.filter((a: { plugin: string }) => a.plugin === "atomic-signatures");
      assertEquals(records[0].detail.fingerprint, fingerprint);
      assertEquals(records[0].detail.identity, `${registry.host}/demo/app:signed`);

      const policy = join(tmp, "policy.json");
      await Deno.writeTextFile(
        policy,
        JSON.stringify({
          default: [{ type: "reject" }],
          transports: {
            docker: {
              [`${registry.host}/demo/app`]: [
                { type: "signedBy", keyType: "GPGKeys", keyPath: publicKey },
              ],
            },
          },
        }),
      );
      const pull = (tag: string) =>
        skopeo(
          "--policy",
          policy,
          "copy",
          "--quiet",
          "--src-tls-verify=false",
          `docker://${registry.host}/demo/app:${tag}`,
          // `dir:` keeps the signatures it read (an OCI layout cannot store them).
          `dir:${join(tmp, `out-${tag}`)}`,
        );
      const verified = await pull("signed");
      assertEquals(verified.ok, true, verified.stderr);
      const copied = await Deno.readFile(join(tmp, "out-signed", "signature-1"));
      assertEquals(copied.toBase64(), listed.signatures[0].content);
      const refused = await pull("unsigned");
      assertEquals(refused.ok, false, "an unsigned image must be refused by the policy");
      assertMatch(refused.stderr, /signature|Source image rejected/i);
    } catch (err) {
      console.error(registry.logs());
      throw err;
    } finally {
      await registry.close();
      await run("gpgconf", ["--kill", "gpg-agent"], env).catch(() => undefined);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
