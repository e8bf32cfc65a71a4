/**
 * Recognising Notation (Notary Project) signatures: OCI manifests with a `subject`, artifact
 * type (or, in the OCI 1.0 form, config media type) `application/vnd.cncf.notary.signature`,
 * and one envelope layer (JWS or COSE). Pure: checks the shape, never the cryptography.
 * @module
 */
import type { Descriptor, Digest, ParsedManifest } from "../../src/plugins/api.ts";
import { baseMediaType } from "../../src/oci/media_types.ts";

/** Artifact type of Notation signatures. */
export const NOTATION_ARTIFACT = "application/vnd.cncf.notary.signature";
/** Envelope media types a Notation signature layer may have. */
export const ENVELOPE_MEDIA_TYPES: readonly string[] = [
  "application/jose+json",
  "application/cose",
];
/** Required manifest annotation: JSON list of SHA-256 certificate fingerprints. */
export const THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256";

/** A Notation signature manifest as the plugin indexes it. */
export interface NotationSignature {
  subject: Digest;
  /** The envelope layer (when the manifest has exactly one layer). */
  envelope?: Descriptor;
  /** Certificate chain fingerprints from the annotation (lowercase hex), when it parses. */
  thumbprints: string[];
  /** Why the manifest is not a well-formed Notation signature, if it is not. */
  problems: string[];
}

/**
 * The Notation signature a pushed manifest is, or null when it is none (no subject or another
 * artifact type). Shape problems are listed, not thrown: such a manifest is still recorded.
 *
 * @example
 * ```ts
 * const sig = notationSignature(event.manifest);
 * sig?.envelope?.mediaType; // "application/jose+json"
 * ```
 */
export function notationSignature(manifest: ParsedManifest): NotationSignature | null {
  if (!manifest.subject || baseMediaType(manifest.artifactType) !== NOTATION_ARTIFACT) {
    return null;
  }
  const problems: string[] = [];
  let envelope: Descriptor | undefined;
  if (manifest.layers.length !== 1) {
    problems.push(`expected exactly one layer, found ${manifest.layers.length}`);
  } else {
    envelope = manifest.layers[0];
    if (!ENVELOPE_MEDIA_TYPES.includes(baseMediaType(envelope.mediaType))) {
      problems.push(`unknown envelope media type "${envelope.mediaType}"`);
    }
  }
  const thumbprints = parseThumbprints(manifest.annotations?.[THUMBPRINT_ANNOTATION], problems);
  return { subject: manifest.subject.digest, envelope, thumbprints, problems };
}

function parseThumbprints(value: string | undefined, problems: string[]): string[] {
  if (value === undefined) {
    problems.push(`annotation ${THUMBPRINT_ANNOTATION} is missing`);
    return [];
  }
  let list: unknown;
  try {
    list = JSON.parse(value);
  } catch {
    list = undefined;
  }
  if (
    !Array.isArray(list) || list.length === 0 ||
    !list.every((t) => typeof t === "string" && /^[0-9a-fA-F]{64}$/.test(t))
  ) {
    problems.push(`annotation ${THUMBPRINT_ANNOTATION} is not a list of SHA-256 hex digests`);
    return [];
  }
  return list.map((t: string) => t.toLowerCase());
}

/**
 * Shape check of an envelope's bytes: a JWS must be a JSON object with `payload`, `protected`
 * and `signature` strings (JWS JSON serialization); a COSE envelope must start with the CBOR
 * tag of `COSE_Sign1` (18). Returns the problem, or null.
 */
export function envelopeProblem(mediaType: string, bytes: Uint8Array): string | null {
  if (baseMediaType(mediaType) === "application/cose") {
    return bytes[0] === 0xd2 ? null : "COSE envelope is not a tagged COSE_Sign1 message";
  }
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return "JWS envelope is not JSON";
  }
  const jws = body as Record<string, unknown> | null;
  const ok = typeof jws === "object" && jws !== null &&
    ["payload", "protected", "signature"].every((k) => typeof jws[k] === "string");
  return ok ? null : "JWS envelope lacks payload, protected or signature";
}
