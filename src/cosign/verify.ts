/**
 * Verification of cosign simple-signing signatures, shared by `wharf verify` and the registry's
 * cosign plugin: one function decides whether a signature layer signs an image under a key.
 * It does not fetch anything; callers hand it the layer bytes and annotation.
 * @module
 */
import type { KeyObject } from "node:crypto";
import { checkClaims, parsePayload, PayloadError, type SimpleSigningPayload } from "./payload.ts";
import { verifyPayloadSignature } from "./signature.ts";

/** The outcome of checking one signature. */
export type VerifyResult =
  | { ok: true; payload: SimpleSigningPayload }
  | { ok: false; reason: string };

/** What the signature must be about; without it only the signature and shape are checked. */
export interface Expectation {
  /** The image's manifest digest the payload must name. */
  imageDigest?: string;
  /** `optional` claims the payload must carry (cosign's `-a key=value`). */
  annotations?: Record<string, string>;
}

/**
 * Checks one cosign signature the way `cosign verify --key` does (without the transparency log):
 * the signature over the exact payload bytes, the payload's shape, then its claims.
 *
 * @example
 * ```ts
 * const result = verifySimpleSigning(layerBytes, annotations["dev.cosignproject.cosign/signature"],
 *   publicKey, { imageDigest: "sha256:…" });
 * if (!result.ok) console.error(result.reason);
 * ```
 */
export function verifySimpleSigning(
  payloadBytes: Uint8Array,
  signatureB64: string | undefined,
  publicKey: KeyObject,
  expected: Expectation = {},
): VerifyResult {
  if (!signatureB64) return { ok: false, reason: "layer has no signature annotation" };
  if (!verifyPayloadSignature(publicKey, payloadBytes, signatureB64)) {
    return { ok: false, reason: "signature does not verify with the given key" };
  }
  let payload: SimpleSigningPayload;
  try {
    payload = parsePayload(payloadBytes);
  } catch (err) {
    if (err instanceof PayloadError) return { ok: false, reason: err.message };
    throw err;
  }
  if (expected.imageDigest !== undefined) {
    const reason = checkClaims(payload, expected.imageDigest, expected.annotations);
    if (reason) return { ok: false, reason };
  }
  return { ok: true, payload };
}
