import { assertEquals } from "../../tests/assert.ts";
import type { Digest, ParsedManifest } from "../../src/plugins/api.ts";
import { OCI_MANIFEST } from "../../src/oci/media_types.ts";
import { COSIGN_SBOM_ARTIFACT, detectSbom, formatOf } from "./detect.ts";

const HEX = "a".repeat(64);
const SUBJECT = `sha256:${"b".repeat(64)}` as Digest;
const d = (mediaType: string, n: string) => ({
  mediaType,
  digest: `sha256:${n.repeat(64)}` as Digest,
  size: 10,
});
const CONFIG = d("application/vnd.oci.image.config.v1+json", "c");

function manifest(layers: ReturnType<typeof d>[], extra: Partial<ParsedManifest> = {}) {
  return {
    mediaType: OCI_MANIFEST,
    blobs: [CONFIG, ...layers],
    manifests: [],
    config: CONFIG,
    layers,
    artifactType: CONFIG.mediaType,
    ...extra,
  } as ParsedManifest;
}

Deno.test("detectSbom: cosign legacy .sbom tag, with and without a tag prefix", () => {
  const layer = d("text/spdx+json", "1");
  for (const tag of [`sha256-${HEX}.sbom`, `signed-sha256-${HEX}.sbom`]) {
    assertEquals(detectSbom(manifest([layer]), tag), {
      subject: `sha256:${HEX}`,
      source: "tag",
      layer,
      format: "spdx",
      json: true,
    });
  }
  assertEquals(detectSbom(manifest([layer]), `sha256-${HEX}.sig`), null);
  assertEquals(detectSbom(manifest([layer]), `sha256-${HEX}`), null);
  assertEquals(detectSbom(manifest([layer])), null, "no tag and no subject");
});

Deno.test("detectSbom: legacy tag with an XML or unknown layer type", () => {
  const xml = detectSbom(manifest([d("application/vnd.cyclonedx+xml", "1")]), `sha256-${HEX}.sbom`);
  assertEquals(xml?.format, "cyclonedx");
  assertEquals(xml?.json, false);
  const unknown = detectSbom(manifest([d("application/octet-stream", "1")]), `sha256-${HEX}.sbom`);
  assertEquals(unknown?.format, undefined);
  assertEquals(unknown?.json, true, "unknown layer types are worth a try");
});

Deno.test("detectSbom: OCI 1.1 referrers by artifactType, config type or layer type", () => {
  const subject = { mediaType: OCI_MANIFEST, digest: SUBJECT, size: 5 };
  const spdx = d("application/spdx+json", "1");
  const byArtifact = detectSbom(
    manifest([d("application/octet-stream", "2")], {
      subject,
      artifactType: "application/vnd.cyclonedx+json; version=1.5",
    }),
  );
  assertEquals(byArtifact?.source, "referrer");
  assertEquals(byArtifact?.subject, SUBJECT);
  assertEquals(byArtifact?.format, "cyclonedx");
  const byLayer = detectSbom(manifest([d("application/octet-stream", "2"), spdx], { subject }));
  assertEquals(byLayer?.layer, spdx);
  const cosign = detectSbom(
    manifest([d("application/vnd.syft+json", "2")], {
      subject,
      artifactType: COSIGN_SBOM_ARTIFACT,
    }),
  );
  assertEquals(cosign?.format, "syft");
  assertEquals(
    detectSbom(manifest([d("application/vnd.dsse.envelope.v1+json", "2")], { subject })),
    null,
    "attestations are not SBOMs",
  );
  assertEquals(detectSbom(manifest([spdx])), null, "an SBOM without subject or tag is an image");
});

Deno.test("detectSbom: indexes and layerless manifests are skipped", () => {
  assertEquals(
    detectSbom(
      { mediaType: OCI_MANIFEST, blobs: [], manifests: [], layers: [] },
      `sha256-${HEX}.sbom`,
    ),
    null,
  );
  assertEquals(detectSbom(manifest([]), `sha256-${HEX}.sbom`), null);
});

Deno.test("formatOf: ignores parameters and case, not fooled by prototype names", () => {
  assertEquals(formatOf("Application/SPDX+JSON; charset=utf-8"), "spdx");
  assertEquals(formatOf("constructor"), undefined);
  assertEquals(formatOf(undefined), undefined);
});
