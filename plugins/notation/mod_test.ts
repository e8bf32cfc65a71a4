/**
 * The notation plugin in a real server: Notation signatures pushed as referrers (both forms)
 * are recorded unverified, malformed ones as invalid, the thumbprint search respects pull
 * rights, and deletes clean up.
 */
import { assertEquals } from "../../tests/assert.ts";
import { startRegistry, type TestRegistry } from "../../tests/harness.ts";
import {
  descriptor,
  errorCode,
  pushBlob,
  type PushedImage,
  pushImage,
  putManifest,
  sha256,
} from "../../tests/oci_client.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const NOTATION = "application/vnd.cncf.notary.signature";
const THUMBPRINT = "io.cncf.notary.x509chain.thumbprint#S256";
const EMPTY = new TextEncoder().encode("{}");
const PRINT = "3b".repeat(32);
const JWS = new TextEncoder().encode(JSON.stringify({
  payload: btoa(JSON.stringify({ targetArtifact: {} })),
  protected: btoa(
    JSON.stringify({ alg: "PS256", cty: "application/vnd.cncf.notary.payload.v1+json" }),
  ),
  header: { x5c: ["MIIB"] },
  signature: "c2ln",
}));

/** Pushes a Notation signature for `subject`, as notation does (by digest, no tag). */
async function pushSignature(
  base: string,
  repo: string,
  subject: PushedImage,
  options: {
    form?: "1.1" | "1.0";
    envelope?: Uint8Array<ArrayBuffer>;
    envelopeType?: string;
    annotations?: Record<string, string>;
  } = {},
): Promise<string> {
  const envelope = options.envelope ?? JWS;
  await pushBlob(base, repo, EMPTY);
  await pushBlob(base, repo, envelope);
  const oci10 = options.form === "1.0";
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(oci10 ? {} : { artifactType: NOTATION }),
    config: descriptor(oci10 ? NOTATION : "application/vnd.oci.empty.v1+json", EMPTY),
    layers: [descriptor(options.envelopeType ?? "application/jose+json", envelope)],
    subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
    annotations: options.annotations ??
      { [THUMBPRINT]: JSON.stringify([PRINT]), "io.cncf.notary.signingAgent": "test" },
  }));
  const digest = sha256(manifest);
  const { response, text } = await putManifest(base, repo, digest, manifest);
  assertEquals(response.status, 201, text);
  return digest;
}

async function records(registry: TestRegistry, repo: string, subject: string) {
  const response = await fetch(`${registry.url}/wharf/v1/${repo}/artifacts/${subject}`);
  assertEquals(response.status, 200);
  return (await response.json()).artifacts.filter((a: { plugin: string }) =>
    a.plugin === "notation"
  );
}

Deno.test("notation plugin: signatures recorded unverified, malformed ones invalid", async (t) => {
  const registry = await startRegistry();
  const base = registry.url;
  try {
    const image = await pushImage(base, "demo/app", "1.0");
    let jws = "";

    await t.step("OCI 1.1 form with a JWS envelope", async () => {
      jws = await pushSignature(base, "demo/app", image);
      assertEquals(await records(registry, "demo/app", image.digest), [{
        repository: "demo/app",
        subject: image.digest,
        digest: jws,
        plugin: "notation",
        kind: "signature",
        type: "notation",
        status: "not-checked",
        detail: {
          envelopeMediaType: "application/jose+json",
          [THUMBPRINT]: [PRINT],
          verification: "not implemented yet",
        },
      }]);
    });

    await t.step("OCI 1.0 form (config media type) with a COSE envelope", async () => {
      const other = await pushImage(base, "demo/app", "2.0");
      const digest = await pushSignature(base, "demo/app", other, {
        form: "1.0",
        envelope: new Uint8Array([0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40]),
        envelopeType: "application/cose",
      });
      const [record] = await records(registry, "demo/app", other.digest);
      assertEquals([record.digest, record.status], [digest, "not-checked"]);
      assertEquals(record.detail.envelopeMediaType, "application/cose");
    });

    await t.step("malformed signatures are recorded as invalid, the push stands", async () => {
      const other = await pushImage(base, "demo/bad", "1");
      await pushSignature(base, "demo/bad", other, { annotations: {} });
      await pushSignature(base, "demo/bad", other, {
        envelope: new TextEncoder().encode("not a jws"),
      });
      const found = await records(registry, "demo/bad", other.digest);
      assertEquals(found.map((r: { status: string }) => r.status), ["invalid", "invalid"]);
      const problems = found.flatMap((r: { detail: { problems: string[] } }) => r.detail.problems)
        .sort();
      assertEquals(problems, [
        "JWS envelope is not JSON",
        `annotation ${THUMBPRINT} is missing`,
      ]);
    });

    await t.step("signatures by thumbprint", async () => {
      const response = await fetch(
        `${base}/wharf/v1/plugins/notation/signatures?thumbprint=${PRINT.toUpperCase()}`,
      );
      const body = await response.json();
      assertEquals(body.signatures.length, 3);
      assertEquals(body.signatures[0].repository, "demo/app");
      const bad = await fetch(`${base}/wharf/v1/plugins/notation/signatures?thumbprint=x`);
      assertEquals([bad.status, await errorCode(bad)], [400, "UNSUPPORTED"]);
    });

    await t.step("deleting the signature removes it", async () => {
      const response = await fetch(`${base}/v2/demo/app/manifests/${jws}`, { method: "DELETE" });
      assertEquals(response.status, 202);
      await response.body?.cancel();
      assertEquals(await records(registry, "demo/app", image.digest), []);
      const left = await fetch(
        `${base}/wharf/v1/plugins/notation/signatures?thumbprint=${PRINT}`,
      );
      assertEquals((await left.json()).signatures.length, 2);
    });
  } catch (err) {
    console.error(registry.logs());
    throw err;
  } finally {
    await registry.close();
  }
});

Deno.test("notation plugin: the thumbprint search lists only pullable repositories", async () => {
  const registry = await startRegistry({
    config: {
      auth: {
        rules: [{ repositories: ["public/**"], anonymous: true, actions: ["pull"] }],
        loopbackAnonymous: ["push"],
      },
    },
  });
  try {
    for (const repo of ["public/app", "private/app"]) {
      await pushSignature(registry.url, repo, await pushImage(registry.url, repo, "1"));
    }
    const response = await fetch(
      `${registry.url}/wharf/v1/plugins/notation/signatures?thumbprint=${PRINT}`,
    );
    const body = await response.json();
    assertEquals(body.signatures.map((s: { repository: string }) => s.repository), [
      "public/app",
    ]);
  } catch (err) {
    console.error(registry.logs());
    throw err;
  } finally {
    await registry.close();
  }
});
