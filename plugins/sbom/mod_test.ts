/**
 * The sbom plugin in a real server: legacy `.sbom` tags and OCI 1.1 referrers are indexed, the
 * package search names images with their tags and only in repositories the caller may pull,
 * broken documents are recorded as invalid without failing the push, and deletes clean up.
 */
import { assertEquals, assertOk } from "../../tests/assert.ts";
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
const EMPTY = new TextEncoder().encode("{}");

const SPDX = {
  spdxVersion: "SPDX-2.3",
  SPDXID: "SPDXRef-DOCUMENT",
  name: "demo/app",
  packages: [
    {
      name: "openssl",
      versionInfo: "3.0.13-1",
      externalRefs: [{
        referenceCategory: "PACKAGE-MANAGER",
        referenceType: "purl",
        referenceLocator: "pkg:deb/debian/openssl@3.0.13-1",
      }],
    },
    { name: "zlib", versionInfo: "1.3" },
  ],
};

const CYCLONEDX = {
  bomFormat: "CycloneDX",
  specVersion: "1.5",
  components: [
    { type: "library", name: "OpenSSL", version: "3.1.0", purl: "pkg:generic/openssl@3.1.0" },
    { type: "library", name: "express", version: "4.19.2", purl: "pkg:npm/express@4.19.2" },
  ],
};

/** Pushes a one-layer artifact manifest (SBOM image or referrer) and returns its digest. */
async function pushArtifact(
  base: string,
  repo: string,
  reference: string | null,
  options: {
    layerType: string;
    layer: Uint8Array<ArrayBuffer>;
    artifactType?: string;
    configType?: string;
    subject?: PushedImage;
  },
): Promise<string> {
  await pushBlob(base, repo, EMPTY);
  await pushBlob(base, repo, options.layer);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: descriptor(options.configType ?? "application/vnd.oci.empty.v1+json", EMPTY),
    layers: [descriptor(options.layerType, options.layer)],
    ...(options.subject
      ? {
        subject: {
          mediaType: OCI_MANIFEST,
          digest: options.subject.digest,
          size: options.subject.manifest.length,
        },
      }
      : {}),
  }));
  const digest = sha256(manifest);
  const { response, text } = await putManifest(base, repo, reference ?? digest, manifest);
  assertEquals(response.status, 201, text);
  return digest;
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const legacyTag = (image: PushedImage) => `${image.digest.replace(":", "-")}.sbom`;

async function search(registry: TestRegistry, query: string) {
  const response = await fetch(`${registry.url}/wharf/v1/plugins/sbom/packages?${query}`);
  assertEquals(response.status, 200);
  return await response.json();
}

async function artifacts(registry: TestRegistry, repo: string, subject: string) {
  const response = await fetch(`${registry.url}/wharf/v1/${repo}/artifacts/${subject}`);
  assertEquals(response.status, 200);
  return (await response.json()).artifacts.filter((a: { plugin: string }) => a.plugin === "sbom");
}

Deno.test("sbom plugin: legacy tags and referrers, package search, invalid documents, deletes", async (t) => {
  const registry = await startRegistry();
  const base = registry.url;
  try {
    const app = await pushImage(base, "demo/app", "1.0");
    const tagged = await putManifest(base, "demo/app", "latest", app.manifest);
    assertEquals(tagged.response.status, 201);
    const other = await pushImage(base, "demo/other", "2.0");
    let legacy = "";
    let referrer = "";

    await t.step("cosign legacy .sbom tag (SPDX JSON) is indexed and recorded", async () => {
      legacy = await pushArtifact(base, "demo/app", legacyTag(app), {
        layerType: "text/spdx+json",
        configType: "application/vnd.oci.image.config.v1+json",
        layer: json(SPDX),
      });
      const records = await artifacts(registry, "demo/app", app.digest);
      assertEquals(records, [{
        repository: "demo/app",
        subject: app.digest,
        digest: legacy,
        plugin: "sbom",
        kind: "sbom",
        type: "spdx",
        status: "not-checked",
        detail: {
          format: "spdx",
          mediaType: "text/spdx+json",
          source: "tag",
          specVersion: "SPDX-2.3",
          packages: 2,
          indexed: true,
        },
      }]);
    });

    await t.step("OCI 1.1 referrer (CycloneDX artifactType) is indexed", async () => {
      referrer = await pushArtifact(base, "demo/other", null, {
        artifactType: "application/vnd.cyclonedx+json",
        layerType: "application/vnd.cyclonedx+json",
        layer: json(CYCLONEDX),
        subject: other,
      });
      const [record] = await artifacts(registry, "demo/other", other.digest);
      assertEquals(record.digest, referrer);
      assertEquals(record.type, "cyclonedx");
      assertEquals(record.detail.packages, 2);
      assertEquals(record.detail.source, "referrer");
    });

    await t.step("one call finds every image with a package, with its tags", async () => {
      const body = await search(registry, "name=openssl");
      assertEquals(body.truncated, false);
      assertEquals(body.images, [
        {
          repository: "demo/app",
          subject: app.digest,
          tags: ["1.0", "latest"],
          packages: [{
            name: "openssl",
            version: "3.0.13-1",
            purl: "pkg:deb/debian/openssl@3.0.13-1",
            format: "spdx",
            sbom: legacy,
          }],
        },
        {
          repository: "demo/other",
          subject: other.digest,
          tags: ["2.0"],
          packages: [{
            name: "OpenSSL",
            version: "3.1.0",
            purl: "pkg:generic/openssl@3.1.0",
            format: "cyclonedx",
            sbom: referrer,
          }],
        },
      ]);
      const versioned = await search(registry, "name=openssl&version=3.1.0");
      assertEquals(versioned.images.map((i: { repository: string }) => i.repository), [
        "demo/other",
      ]);
      const byPurl = await search(registry, "purl=pkg:npm/express@4.19.2");
      assertEquals(byPurl.images.length, 1);
      assertEquals((await search(registry, "name=left-pad")).images, []);
      const limited = await search(registry, "name=openssl&limit=1");
      assertEquals([limited.images.length, limited.truncated], [1, true]);
    });

    await t.step("tags that moved away are not reported", async () => {
      const next = await pushImage(base, "demo/app", "latest");
      assertOk(next.digest !== app.digest);
      const body = await search(registry, "name=zlib");
      assertEquals(body.images[0].tags, ["1.0"]);
    });

    await t.step("bad query parameters are OCI errors", async () => {
      const none = await fetch(`${base}/wharf/v1/plugins/sbom/packages`);
      assertEquals([none.status, await errorCode(none)], [400, "UNSUPPORTED"]);
      const limit = await fetch(`${base}/wharf/v1/plugins/sbom/packages?name=x&limit=0`);
      assertEquals([limit.status, await errorCode(limit)], [400, "PAGINATION_NUMBER_INVALID"]);
    });

    await t.step("a malformed SBOM is recorded as invalid and the push stands", async () => {
      const broken = await pushImage(base, "demo/broken", "1");
      const digest = await pushArtifact(base, "demo/broken", null, {
        artifactType: "application/spdx+json",
        layerType: "application/spdx+json",
        layer: new TextEncoder().encode('{"spdxVersion": "SPDX-2.3", "packages": [{"versionInfo'),
        subject: broken,
      });
      const [record] = await artifacts(registry, "demo/broken", broken.digest);
      assertEquals(record.digest, digest);
      assertEquals(record.status, "invalid");
      assertOk(String(record.detail.error).startsWith("not UTF-8 JSON"), record.detail.error);
      assertOk(registry.logs().includes('"msg":"SBOM not readable"'));
    });

    await t.step("a non-JSON SBOM is recorded but not indexed", async () => {
      const xml = await pushImage(base, "demo/xml", "1");
      await pushArtifact(base, "demo/xml", legacyTag(xml), {
        layerType: "application/vnd.cyclonedx+xml",
        layer: new TextEncoder().encode("<bom/>"),
      });
      const [record] = await artifacts(registry, "demo/xml", xml.digest);
      assertEquals(record.status, "not-checked");
      assertEquals(record.detail.indexed, false);
    });

    await t.step("a re-pushed .sbom tag replaces the subject's earlier SBOM", async () => {
      const replaced = await pushArtifact(base, "demo/app", legacyTag(app), {
        layerType: "text/spdx+json",
        layer: json({ spdxVersion: "SPDX-2.3", packages: [{ name: "busybox" }] }),
      });
      const records = await artifacts(registry, "demo/app", app.digest);
      assertEquals(records.map((r: { digest: string }) => r.digest), [replaced]);
      assertEquals((await search(registry, "name=zlib")).images, []);
      assertEquals((await search(registry, "name=busybox")).images.length, 1);
    });

    await t.step("deleting the SBOM manifest removes its packages", async () => {
      const response = await fetch(`${base}/v2/demo/other/manifests/${referrer}`, {
        method: "DELETE",
      });
      assertEquals(response.status, 202);
      await response.body?.cancel();
      const body = await search(registry, "name=express");
      assertEquals(body.images, []);
      assertEquals(await artifacts(registry, "demo/other", other.digest), []);
    });
  } catch (err) {
    console.error(registry.logs());
    throw err;
  } finally {
    await registry.close();
  }
});

Deno.test("sbom plugin: the search lists only repositories the caller may pull", async () => {
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
      const image = await pushImage(registry.url, repo, "1");
      await pushArtifact(registry.url, repo, null, {
        artifactType: "application/spdx+json",
        layerType: "application/spdx+json",
        layer: json(SPDX),
        subject: image,
      });
    }
    const body = await search(registry, "name=openssl");
    assertEquals(body.images.map((i: { repository: string }) => i.repository), ["public/app"]);
  } catch (err) {
    console.error(registry.logs());
    throw err;
  } finally {
    await registry.close();
  }
});
