import { generateKeyPairSync } from "node:crypto";
import { assertEquals, assertOk } from "../../tests/assert.ts";
import { digestOf } from "../oci/digest.ts";
import {
  attachmentLayers,
  attachmentTag,
  buildAttachmentImage,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from "./attachments.ts";
import { buildStatement, pae, signEnvelope, verifyEnvelope } from "./dsse.ts";
import { sbomMediaType } from "./sbom.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const enc = (text: string) => new TextEncoder().encode(text);
const layer = (text: string, sig = "c2ln") => ({
  mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
  bytes: enc(text),
  annotations: { [SIGNATURE_ANNOTATION]: sig },
});

Deno.test("attachments: tags, legacy image, append without duplicates", () => {
  assertEquals(attachmentTag(DIGEST, "sig"), `sha256-${"a".repeat(64)}.sig`);
  assertEquals(attachmentTag(DIGEST, ""), `sha256-${"a".repeat(64)}`);
  const first = buildAttachmentImage({ kind: "sig", add: [layer("one")] });
  const manifest = JSON.parse(new TextDecoder().decode(first.manifest));
  assertEquals(Object.keys(manifest), ["schemaVersion", "mediaType", "config", "layers"]);
  assertEquals(manifest.config.mediaType, "application/vnd.oci.image.config.v1+json");
  assertEquals(manifest.layers[0], {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    size: 3,
    digest: digestOf(enc("one")),
    annotations: { [SIGNATURE_ANNOTATION]: "c2ln" },
  });
  const config = JSON.parse(new TextDecoder().decode(first.config.bytes));
  assertEquals(config.rootfs, { type: "layers", diff_ids: [digestOf(enc("one"))] });
  assertEquals([config.architecture, config.os], ["", ""]);
  assertEquals(first.digest, digestOf(first.manifest));

  const existing = attachmentLayers(first.manifest).map((l) => l.descriptor);
  const second = buildAttachmentImage({
    kind: "sig",
    existingLayers: existing,
    add: [layer("one"), layer("two")],
  });
  assertEquals(second.layers.length, 2);
  assertEquals(second.newLayers.map((b) => new TextDecoder().decode(b.bytes)), ["two"]);
  assertEquals(attachmentLayers(second.manifest)[1].signature, "c2ln");
});

Deno.test("attachments: referrers variant has subject and artifactType", () => {
  const subject = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    size: 9,
    digest: DIGEST,
  };
  const image = buildAttachmentImage({ kind: "sig", add: [layer("one")], subject });
  const manifest = JSON.parse(new TextDecoder().decode(image.manifest));
  assertEquals(manifest.artifactType, "application/vnd.dev.cosign.artifact.sig.v1+json");
  assertEquals(manifest.config.mediaType, manifest.artifactType);
  assertEquals(manifest.subject, subject);
});

Deno.test("dsse: PAE, sign and verify an in-toto statement", () => {
  assertEquals(new TextDecoder().decode(pae("t", enc("ab"))), "DSSEv1 1 t 2 ab");
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const statement = buildStatement("https://slsa.dev/provenance/v0.2", { a: 1 }, "r/app", DIGEST);
  assertEquals(statement.subject, [{ name: "r/app", digest: { sha256: "a".repeat(64) } }]);
  const envelope = signEnvelope(privateKey, enc(JSON.stringify(statement)));
  const result = verifyEnvelope(envelope, publicKey);
  assertOk(result.ok);
  assertEquals(JSON.parse(new TextDecoder().decode(result.payload)), statement);
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
  assertEquals(verifyEnvelope(envelope, other).ok, false);
});

Deno.test("sbom: media types from content or flags", () => {
  assertEquals(sbomMediaType(enc('{"spdxVersion":"SPDX-2.3"}')), "text/spdx+json");
  assertEquals(sbomMediaType(enc("SPDXVersion: SPDX-2.3\n")), "text/spdx");
  assertEquals(sbomMediaType(enc('{"bomFormat":"CycloneDX"}')), "application/vnd.cyclonedx+json");
  assertEquals(sbomMediaType(enc("<?xml?><bom xmlns=''>")), "application/vnd.cyclonedx+xml");
  assertEquals(sbomMediaType(enc("{}"), "syft"), "application/vnd.syft+json");
});
