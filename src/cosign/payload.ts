/**
 * The simple-signing payload cosign and containers/image sign
 * (sigstore/sigstore `pkg/signature/payload`): which manifest digest a signature covers and
 * which repository it names, plus free-form `optional` claims.
 * @module
 */

/** `critical.type` of every cosign simple-signing payload. */
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";

/** A parsed simple-signing payload. */
export interface SimpleSigningPayload {
  critical: {
    identity: { "docker-reference": string };
    image: { "docker-manifest-digest": string };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

/** What {@link buildPayload} signs. */
export interface PayloadClaims {
  /** `registry/repository` as cosign writes it (c/image writes `registry/repository:tag`). */
  dockerReference: string;
  /** The signed manifest's digest. */
  manifestDigest: string;
  /** `optional` claims (cosign's `-a key=value`); `null` when absent, as cosign writes. */
  optional?: Record<string, unknown> | null;
}

/**
 * The payload bytes to sign, byte-identical to cosign's for the same claims.
 *
 * @example
 * ```ts
 * buildPayload({ dockerReference: "reg.example/app", manifestDigest: "sha256:…" });
 * // {"critical":{"identity":{"docker-reference":"reg.example/app"},…},"optional":null}
 * ```
 */
export function buildPayload(claims: PayloadClaims): Uint8Array {
  const optional = claims.optional && Object.keys(claims.optional).length ? claims.optional : null;
  const payload: SimpleSigningPayload = {
    critical: {
      identity: { "docker-reference": claims.dockerReference },
      image: { "docker-manifest-digest": claims.manifestDigest },
      type: COSIGN_SIGNATURE_TYPE,
    },
    optional,
  };
  return new TextEncoder().encode(JSON.stringify(payload));
}

/** A payload that cannot be parsed or lacks required fields. */
export class PayloadError extends Error {
  override name = "PayloadError";
}

/** Parses and shape-checks payload bytes; throws {@link PayloadError}. */
export function parsePayload(bytes: Uint8Array): SimpleSigningPayload {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new PayloadError("payload is not JSON");
  }
  const payload = value as SimpleSigningPayload;
  const critical = payload?.critical;
  if (typeof critical !== "object" || critical === null) {
    throw new PayloadError('payload has no "critical" object');
  }
  if (critical.type !== COSIGN_SIGNATURE_TYPE) {
    throw new PayloadError(`payload type is "${critical.type}", not "${COSIGN_SIGNATURE_TYPE}"`);
  }
  if (typeof critical.image?.["docker-manifest-digest"] !== "string") {
    throw new PayloadError("payload has no critical.image.docker-manifest-digest");
  }
  if (typeof critical.identity?.["docker-reference"] !== "string") {
    throw new PayloadError("payload has no critical.identity.docker-reference");
  }
  const optional = payload.optional ?? null;
  if (optional !== null && (typeof optional !== "object" || Array.isArray(optional))) {
    throw new PayloadError('payload "optional" is not an object');
  }
  return { critical, optional };
}

/**
 * Checks a parsed payload against the image it should sign, like cosign's `SimpleClaimVerifier`:
 * the digest must match and every expected annotation must be in `optional`. `docker-reference`
 * is not compared (mirrored signatures verify under any name). Returns the failure reason, or
 * `undefined` when the claims hold.
 */
export function checkClaims(
  payload: SimpleSigningPayload,
  imageDigest: string,
  annotations: Record<string, string> = {},
): string | undefined {
  const signed = payload.critical.image["docker-manifest-digest"];
  if (signed !== imageDigest) {
    return `payload signs ${signed}, not ${imageDigest}`;
  }
  for (const [key, value] of Object.entries(annotations)) {
    const actual = payload.optional?.[key];
    if (actual !== value) {
      return `annotation ${key}=${JSON.stringify(value)} not in payload (found ${
        JSON.stringify(actual ?? null)
      })`;
    }
  }
  return undefined;
}
