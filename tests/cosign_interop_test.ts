/**
 * cosign interop of the Wharf CLI with real sigstore-enabled skopeo (upstream 1.13.3, see
 * ../shared/bin/README.md) against a running Wharf:
 * - a key pair from `wharf keys generate` signs with `skopeo copy --sign-by-sigstore-private-key`,
 *   and `wharf verify` verifies that signature;
 * - an image signed by `wharf sign` passes skopeo's `sigstoreSigned` policy with the `.pub`,
 *   and fails with another key and for an unsigned image;
 * - signatures append (skopeo then wharf), `--referrers` signatures, attestations, SBOMs, and
 *   signing through the Docker token flow.
 * Skipped, with the reason, when the sigstore skopeo is absent (set SKOPEO_SIGSTORE).
 * @module
 */
import bcrypt from "bcryptjs";
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { startRegistry, type TestRegistry } from "./harness.ts";
import { initLayout, type LayoutImage, tagLayout, writeImage } from "./oci_layout.ts";
import { parsePublicKey } from "../src/cosign/keys.ts";
import { verifyEnvelope } from "../src/cosign/dsse.ts";

const SKOPEO = Deno.env.get("SKOPEO_SIGSTORE") ??
  new URL("../../shared/bin/skopeo", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PASSWORD = "wharf-test-passphrase";

function skopeoVersion(): string | undefined {
  try {
    const out = new Deno.Command(SKOPEO, { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const ignore = skopeoVersion() === undefined;
if (ignore) {
  console.warn(
    `cosign_interop_test: skipped — sigstore-enabled skopeo "${SKOPEO}" was not found or failed ` +
      "to run (set SKOPEO_SIGSTORE to its path; Debian's skopeo has sigstore disabled)",
  );
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(bin: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(bin, {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function describe(bin: string, args: string[], result: RunResult): string {
  return `${bin} ${args.join(" ")} (exit ${result.code}):\n${result.stdout}${result.stderr}`;
}

async function mustRun(bin: string, args: string[], env?: Record<string, string>) {
  const result = await run(bin, args, env);
  if (result.code !== 0) throw new Error(describe(bin, args, result));
  return result;
}

async function mustFail(bin: string, args: string[], env?: Record<string, string>) {
  const result = await run(bin, args, env);
  if (result.code === 0) throw new Error(`expected failure: ${describe(bin, args, result)}`);
  return result;
}

/** Runs the Wharf CLI (`deno run -A main.ts …`) with the key passphrase in WHARF_PASSWORD. */
function wharf(args: string[], env: Record<string, string> = {}) {
  return run(Deno.execPath(), ["run", "-A", MAIN, ...args], { WHARF_PASSWORD: PASSWORD, ...env });
}

async function mustWharf(args: string[], env?: Record<string, string>) {
  const result = await wharf(args, env);
  if (result.code !== 0) throw new Error(describe("wharf", args, result));
  return result;
}

interface Env {
  registry: TestRegistry;
  tmp: string;
  /** registries.d directory enabling sigstore attachments for the registry host. */
  registriesD: string;
  /** Policy accepting anything (for pushes). */
  openPolicy: string;
  passphraseFile: string;
  /** A pushed image under `repo:tag`; returns its manifest digest. */
  push(repo: string, tag: string, ...flags: string[]): Promise<LayoutImage>;
  /** A `wharf keys generate` pair; returns `{key, pub}` paths. */
  keys(name: string): Promise<{ key: string; pub: string }>;
  /** A policy requiring a sigstore signature by `pub` for `repo`, matchRepository. */
  policy(repo: string, pub: string): Promise<string>;
}

/** Builds a registry config in the test's temp directory. */
type ConfigFn = (tmp: string) => Promise<Record<string, unknown>>;

async function withEnv(fn: (env: Env) => Promise<void>, config?: ConfigFn): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "wharf-cosign-" });
  let registry: TestRegistry | undefined;
  try {
    registry = await startRegistry(config ? { config: await config(tmp) } : {});
    const host = registry.host;
    const registriesD = join(tmp, "registries.d");
    await Deno.mkdir(registriesD);
    await Deno.writeTextFile(
      join(registriesD, "wharf.yaml"),
      `docker:\n  ${host}:\n    use-sigstore-attachments: true\n`,
    );
    const openPolicy = join(tmp, "open-policy.json");
    await Deno.writeTextFile(
      openPolicy,
      JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
    );
    const passphraseFile = join(tmp, "passphrase");
    await Deno.writeTextFile(passphraseFile, `${PASSWORD}\n`);
    const layout = join(tmp, "layout");
    await initLayout(layout);
    let n = 0;
    const env: Env = {
      registry,
      tmp,
      registriesD,
      openPolicy,
      passphraseFile,
      async push(repo, tag, ...flags) {
        const image = await writeImage(layout, { layerSizes: [1024 + n++] });
        await tagLayout(layout, `img${n}`, image.descriptor);
        await mustRun(SKOPEO, [
          "copy",
          "--quiet",
          "--policy",
          openPolicy,
          "--registries.d",
          registriesD,
          "--dest-tls-verify=false",
          "--preserve-digests",
          ...flags,
          `oci:${layout}:img${n}`,
          `docker://${host}/${repo}:${tag}`,
        ], { HOME: tmp });
        return image;
      },
      async keys(name) {
        const prefix = join(tmp, name);
        await mustWharf(["keys", "generate", "--output-prefix", prefix]);
        return { key: `${prefix}.key`, pub: `${prefix}.pub` };
      },
      async policy(repo, pub) {
        const path = join(tmp, `policy-${n++}.json`);
        await Deno.writeTextFile(
          path,
          JSON.stringify({
            default: [{ type: "reject" }],
            transports: {
              docker: {
                [`${host}/${repo}`]: [{
                  type: "sigstoreSigned",
                  keyPath: pub,
                  signedIdentity: { type: "matchRepository" },
                }],
              },
            },
          }),
        );
        return path;
      },
    };
    await fn(env);
  } catch (err) {
    if (registry) console.error(`registry log:\n${registry.logs()}`);
    throw err;
  } finally {
    await registry?.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** `skopeo copy` from the registry under `policy`, reading sigstore attachments. */
function pullArgs(env: Env, policy: string, repo: string, tag: string): string[] {
  return [
    "copy",
    "--quiet",
    "--policy",
    policy,
    "--registries.d",
    env.registriesD,
    "--src-tls-verify=false",
    `docker://${env.registry.host}/${repo}:${tag}`,
    `dir:${join(env.tmp, `out-${crypto.randomUUID()}`)}`,
  ];
}

async function getManifest(env: Env, repo: string, reference: string) {
  const response = await fetch(`${env.registry.url}/v2/${repo}/manifests/${reference}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  assertEquals(response.status, 200, `GET ${repo}:${reference}`);
  return await response.json();
}

async function getBlob(env: Env, repo: string, digest: string): Promise<Uint8Array> {
  const response = await fetch(`${env.registry.url}/v2/${repo}/blobs/${digest}`);
  assertEquals(response.status, 200);
  return new Uint8Array(await response.arrayBuffer());
}

Deno.test({
  name: "cosign interop: skopeo signs with a wharf key; wharf verify checks it; wharf appends",
  ignore,
  fn: () =>
    withEnv(async (env) => {
      const host = env.registry.host;
      const { key, pub } = await env.keys("wharf");
      assertMatch(await Deno.readTextFile(key), /^-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----/);
      const image = await env.push(
        "interop/skopeo-signed",
        "v1",
        "--sign-by-sigstore-private-key",
        key,
        "--sign-passphrase-file",
        env.passphraseFile,
      );
      const digest = image.descriptor.digest;
      const sigTag = `sha256-${digest.slice(7)}.sig`;
      const sig = await getManifest(env, "interop/skopeo-signed", sigTag);
      assertEquals(sig.layers.length, 1);

      // wharf verify accepts skopeo's signature and prints its payload.
      const ref = `${host}/interop/skopeo-signed:v1`;
      const verified = await mustWharf(["verify", "--key", pub, ref]);
      const payloads = JSON.parse(verified.stdout);
      assertEquals(payloads.length, 1);
      assertEquals(payloads[0].critical.image["docker-manifest-digest"], digest);
      assertEquals(payloads[0].critical.identity["docker-reference"], ref);
      assertMatch(String(payloads[0].optional.creator), /containers\/image/);

      // Another key: exit 1, one line with the reason.
      const other = await env.keys("other");
      const failed = await wharf(["verify", "--key", other.pub, ref]);
      assertEquals(failed.code, 1);
      assertEquals(failed.stderr.trim().split("\n").length, 1, failed.stderr);
      assertMatch(failed.stderr, /signature does not verify with the given key/);

      // wharf sign appends a second layer; both keys now verify, skopeo's policy too.
      await mustWharf(["sign", "--key", other.key, ref]);
      const appended = await getManifest(env, "interop/skopeo-signed", sigTag);
      assertEquals(appended.layers.length, 2);
      assertEquals(appended.layers[0], sig.layers[0]);
      const config = JSON.parse(
        new TextDecoder().decode(
          await getBlob(env, "interop/skopeo-signed", appended.config.digest),
        ),
      );
      assertEquals(
        config.rootfs.diff_ids,
        appended.layers.map((l: { digest: string }) => l.digest),
      );
      for (const k of [pub, other.pub]) {
        assertEquals(JSON.parse((await mustWharf(["verify", "--key", k, ref])).stdout).length, 1);
        await mustRun(
          SKOPEO,
          pullArgs(
            env,
            await env.policy("interop/skopeo-signed", k),
            "interop/skopeo-signed",
            "v1",
          ),
        );
      }
    }),
});

Deno.test({
  name:
    "cosign interop: wharf sign passes skopeo's sigstoreSigned policy; wrong key and unsigned fail",
  ignore,
  fn: () =>
    withEnv(async (env) => {
      const host = env.registry.host;
      const { key, pub } = await env.keys("signer");
      const other = await env.keys("other");
      const image = await env.push("interop/app", "v1");
      await env.push("interop/app", "unsigned");

      const signed = await mustWharf(["sign", "--key", key, `${host}/interop/app:v1`]);
      const sigTag = `sha256-${image.descriptor.digest.slice(7)}.sig`;
      assertEquals(signed.stdout.trim(), `Pushed signature to ${host}/interop/app:${sigTag}`);

      // The stored signature is shaped as cosign writes it.
      const sig = await getManifest(env, "interop/app", sigTag);
      assertEquals(sig.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assertEquals(sig.config.mediaType, "application/vnd.oci.image.config.v1+json");
      assertEquals(sig.layers.length, 1);
      assertEquals(sig.layers[0].mediaType, "application/vnd.dev.cosign.simplesigning.v1+json");
      const payload = await getBlob(env, "interop/app", sig.layers[0].digest);
      assertEquals(
        new TextDecoder().decode(payload),
        `{"critical":{"identity":{"docker-reference":"${host}/interop/app"},"image":{` +
          `"docker-manifest-digest":"${image.descriptor.digest}"},"type":"cosign container ` +
          `image signature"},"optional":null}`,
      );
      // ASN.1 DER: a SEQUENCE (0x30), as skopeo 1.9 requires.
      const signature = sig.layers[0].annotations["dev.cosignproject.cosign/signature"];
      assertEquals(atob(signature).charCodeAt(0), 0x30);

      const good = await env.policy("interop/app", pub);
      await mustRun(SKOPEO, pullArgs(env, good, "interop/app", "v1"));
      const wrong = await mustFail(
        SKOPEO,
        pullArgs(env, await env.policy("interop/app", other.pub), "interop/app", "v1"),
      );
      assertMatch(wrong.stderr, /signature|verif/i);
      const unsigned = await mustFail(SKOPEO, pullArgs(env, good, "interop/app", "unsigned"));
      assertMatch(unsigned.stderr, /signature/i);

      // Signing by digest works the same, and signing twice with one key does not duplicate.
      await mustWharf(["sign", "--key", key, `${host}/interop/app@${image.descriptor.digest}`]);
      assertEquals((await getManifest(env, "interop/app", sigTag)).layers.length, 1);

      // wharf verify on the unsigned image: exit 1 with the reason.
      const none = await wharf(["verify", "--key", pub, `${host}/interop/app:unsigned`]);
      assertEquals(none.code, 1);
      assertMatch(none.stderr, /^error: no signatures found for /);
    }),
});

Deno.test({
  name: "cosign interop: --referrers signature, attestation and SBOM are stored as cosign does",
  ignore,
  fn: () =>
    withEnv(async (env) => {
      const host = env.registry.host;
      const { key, pub } = await env.keys("signer");
      const image = await env.push("interop/art", "v1");
      const digest = image.descriptor.digest;
      const ref = `${host}/interop/art:v1`;

      // Referrers mode: pushed by digest with subject; verify finds it through the API.
      await mustWharf(["sign", "--referrers", "--key", key, ref]);
      const referrers = await (await fetch(
        `${env.registry.url}/v2/interop/art/referrers/${digest}`,
      )).json();
      assertEquals(referrers.manifests.length, 1);
      assertEquals(
        referrers.manifests[0].artifactType,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
      );
      const referrer = await getManifest(env, "interop/art", referrers.manifests[0].digest);
      assertEquals(referrer.subject.digest, digest);
      const verified = JSON.parse((await mustWharf(["verify", "--key", pub, ref])).stdout);
      assertEquals(verified.length, 1);

      // Attestation: a DSSE envelope over an in-toto statement in the .att tag.
      const predicate = join(env.tmp, "provenance.json");
      await Deno.writeTextFile(predicate, JSON.stringify({ builder: { id: "wharf-test" } }));
      await mustWharf([
        "attest",
        "--key",
        key,
        "--predicate",
        predicate,
        "--type",
        "slsaprovenance",
        ref,
      ]);
      const att = await getManifest(env, "interop/art", `sha256-${digest.slice(7)}.att`);
      assertEquals(att.layers[0].mediaType, "application/vnd.dsse.envelope.v1+json");
      assertEquals(att.layers[0].annotations, {
        "dev.cosignproject.cosign/signature": "",
        predicateType: "https://slsa.dev/provenance/v0.2",
      });
      const envelope = await getBlob(env, "interop/art", att.layers[0].digest);
      const checked = verifyEnvelope(envelope, parsePublicKey(await Deno.readTextFile(pub)));
      assertOk(checked.ok);
      const statement = JSON.parse(new TextDecoder().decode(checked.payload));
      assertEquals(statement.subject, [{
        name: `${host}/interop/art`,
        digest: { sha256: digest.slice(7) },
      }]);
      assertEquals(statement.predicate, { builder: { id: "wharf-test" } });

      // SBOM: one layer with the SPDX JSON media type, replaced (not appended) on re-attach.
      const sbom = join(env.tmp, "sbom.spdx.json");
      await Deno.writeTextFile(sbom, JSON.stringify({ spdxVersion: "SPDX-2.3", name: "x" }));
      await mustWharf(["sbom", "attach", sbom, ref]);
      await mustWharf(["sbom", "attach", sbom, ref]);
      const sbomManifest = await getManifest(env, "interop/art", `sha256-${digest.slice(7)}.sbom`);
      assertEquals(sbomManifest.layers.length, 1);
      assertEquals(sbomManifest.layers[0].mediaType, "text/spdx+json");
      assertEquals(
        await getBlob(env, "interop/art", sbomManifest.layers[0].digest),
        await Deno.readFile(sbom),
      );
    }),
});

Deno.test({
  name: "cosign interop: sign and verify through the Docker token flow with credentials",
  ignore,
  fn: () =>
    withEnv(async (env) => {
      const host = env.registry.host;
      const { key, pub } = await env.keys("signer");
      const authFile = join(env.tmp, "auth.json");
      await Deno.writeTextFile(
        authFile,
        JSON.stringify({ auths: { [host]: { auth: btoa("alice:alice-pw") } } }),
      );
      await env.push("secure/app", "v1", "--dest-authfile", authFile);
      const ref = `${host}/secure/app:v1`;

      const anonymous = await wharf(["sign", "--key", key, ref]);
      assertEquals(anonymous.code, 1);
      assertMatch(anonymous.stderr, /^error: .*(unauthorized|refused)/);
      const wrong = await wharf(["sign", "--key", key, "-u", "alice", "-p", "nope", ref]);
      assertEquals(wrong.code, 1);
      assertMatch(wrong.stderr, /wrong username or password|credentials rejected/);

      await mustWharf(["sign", "--key", key, "--username", "alice", "--password", "alice-pw", ref]);
      const verified = await mustWharf(["verify", "--key", pub, ref], {
        WHARF_REGISTRY_USERNAME: "alice",
        WHARF_REGISTRY_PASSWORD: "alice-pw",
      });
      assertEquals(JSON.parse(verified.stdout).length, 1);
    }, async (tmp) => {
      const htpasswd = join(tmp, "htpasswd");
      await Deno.writeTextFile(htpasswd, `alice:${bcrypt.hashSync("alice-pw", 5)}\n`);
      return {
        auth: {
          htpasswd,
          token: { enabled: true, expiresIn: 300, service: "wharf" },
          rules: [{ repositories: ["**"], users: ["alice"], actions: ["*"] }],
        },
      };
    }),
});
