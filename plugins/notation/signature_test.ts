import { assertEquals } from "../../tests/assert.ts";
import type { Descriptor, Digest, ParsedManifest } from "../../src/plugins/api.ts";
import { OCI_MANIFEST } from "../../src/oci/media_types.ts";
import {
  envelopeProblem,
  NOTATION_ARTIFACT,
  notationSignature,
  THUMBPRINT_ANNOTATION,
} from "./signature.ts";

const SUBJECT = { mediaType: OCI_MANIFEST, digest: `sha256:${"b".repeat(64)}` as Digest, size: 9 };
const PRINT = "A".repeat(64);
const layer = (mediaType: string): Descriptor => ({
  mediaType,
  digest: `sha256:${"1".repeat(64)}` as Digest,
  size: 100,
});

function manifest(extra: Partial<ParsedManifest>): ParsedManifest {
  return {
    mediaType: OCI_MANIFEST,
    blobs: [],
    manifests: [],
    layers: [layer("application/jose+json")],
    subject: SUBJECT,
    artifactType: NOTATION_ARTIFACT,
    annotations: { [THUMBPRINT_ANNOTATION]: JSON.stringify([PRINT]) },
    ...extra,
  };
}

Deno.test("notationSignature: OCI 1.1 and OCI 1.0 (config type) forms", () => {
  assertEquals(notationSignature(manifest({})), {
    subject: SUBJECT.digest,
    envelope: layer("application/jose+json"),
    thumbprints: ["a".repeat(64)],
    problems: [],
  });
  // parseManifest folds the config media type into artifactType for the OCI 1.0 form.
  const cose = notationSignature(manifest({ layers: [layer("application/cose")] }));
  assertEquals(cose?.problems, []);
});

Deno.test("notationSignature: other manifests are not signatures", () => {
  assertEquals(notationSignature(manifest({ subject: undefined })), null);
  assertEquals(notationSignature(manifest({ artifactType: "application/spdx+json" })), null);
});

Deno.test("notationSignature: shape problems are listed", () => {
  assertEquals(notationSignature(manifest({ layers: [] }))?.problems, [
    "expected exactly one layer, found 0",
  ]);
  assertEquals(notationSignature(manifest({ layers: [layer("text/plain")] }))?.problems, [
    'unknown envelope media type "text/plain"',
  ]);
  assertEquals(notationSignature(manifest({ annotations: {} }))?.problems.length, 1);
  const bad = notationSignature(manifest({ annotations: { [THUMBPRINT_ANNOTATION]: "[1]" } }));
  assertEquals(bad?.thumbprints, []);
  assertEquals(bad?.problems.length, 1);
});

Deno.test("envelopeProblem: JWS JSON serialization and tagged COSE_Sign1", () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  assertEquals(
    envelopeProblem(
      "application/jose+json",
      enc({ payload: "e30", protected: "e30", signature: "x" }),
    ),
    null,
  );
  assertEquals(
    envelopeProblem("application/jose+json", enc({ payload: "e30" })),
    "JWS envelope lacks payload, protected or signature",
  );
  assertEquals(
    envelopeProblem("application/jose+json", new Uint8Array([1])),
    "JWS envelope is not JSON",
  );
  assertEquals(envelopeProblem("application/cose", new Uint8Array([0xd2, 0x84])), null);
  assertEquals(
    envelopeProblem("application/cose", new Uint8Array([0x84])),
    "COSE envelope is not a tagged COSE_Sign1 message",
  );
});
