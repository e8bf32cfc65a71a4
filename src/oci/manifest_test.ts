import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { parseManifest } from "./manifest.ts";
import { RegistryError } from "./errors.ts";
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "./media_types.ts";

const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const d = (c: string) => `sha256:${c.repeat(64)}`;
const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: d("a"), size: 2 };
const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("b"), size: 3 };

function code(fn: () => unknown): string {
  return assertThrows(fn, RegistryError).code;
}

Deno.test("image manifests: blobs, subject and artifact type", () => {
  const parsed = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config,
      layers: [layer, { ...layer, digest: d("c"), urls: ["https://example.com/l"] }],
      subject: { mediaType: OCI_MANIFEST, digest: d("e"), size: 10 },
    }),
    OCI_MANIFEST,
  );
  assertEquals(parsed.mediaType, OCI_MANIFEST);
  assertEquals(parsed.blobs.map((b) => b.digest), [d("a"), d("b")]); // foreign layer skipped
  assertEquals(parsed.subject?.digest, d("e"));
  assertEquals(parsed.artifactType, config.mediaType);
});

Deno.test("media type comes from Content-Type, mediaType, or the shape", () => {
  assertEquals(
    parseManifest(enc({ schemaVersion: 2, config, layers: [] }), null).mediaType,
    OCI_MANIFEST,
  );
  assertEquals(parseManifest(enc({ schemaVersion: 2, manifests: [] }), null).mediaType, OCI_INDEX);
  assertEquals(
    parseManifest(
      enc({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [] }),
      "application/json",
    )
      .mediaType,
    DOCKER_MANIFEST,
  );
  assertEquals(
    code(() =>
      parseManifest(enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), OCI_MANIFEST)
    ),
    "MANIFEST_INVALID",
  );
});

Deno.test("shape errors are MANIFEST_INVALID", () => {
  const bad: unknown[] = [
    { schemaVersion: 1 },
    { schemaVersion: 2, mediaType: "application/x-unknown" },
    { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] },
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { ...config, digest: "sha256:zz" },
      layers: [],
    },
    { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, size: -1 }, layers: [] },
    { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: {} },
    { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { a: 1 } },
    {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [{ ...layer, mediaType: DOCKER_MANIFEST }],
    },
    { schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws" },
  ];
  for (const manifest of bad) {
    assertEquals(
      code(() => parseManifest(enc(manifest), null)),
      "MANIFEST_INVALID",
      JSON.stringify(manifest),
    );
  }
  assertEquals(code(() => parseManifest(new Uint8Array([0xff, 0xfe]), null)), "MANIFEST_INVALID");
});
