/**
 * Raw signatures over payload bytes, as cosign and sigstore make and check them: ECDSA with
 * SHA-256 (ASN.1 DER written; DER and IEEE P1363 `r‖s` read), RSA PKCS#1 v1.5 (PSS also read)
 * with SHA-256, and Ed25519. The annotation form is standard base64.
 * @module
 */
import { Buffer } from "node:buffer";
import { constants, type KeyObject, sign, verify } from "node:crypto";

/**
 * Signs `payload` and returns the base64 signature cosign puts in the
 * `dev.cosignproject.cosign/signature` annotation (ECDSA: ASN.1 DER, which skopeo 1.9 requires).
 *
 * @example
 * ```ts
 * const sig = signPayload(privateKey, payloadBytes); // "MEUCIQ…"
 * ```
 */
export function signPayload(privateKey: KeyObject, payload: Uint8Array): string {
  const type = privateKey.asymmetricKeyType;
  let signature: Uint8Array;
  if (type === "ed25519") signature = sign(null, payload, privateKey);
  else if (type === "ec") {
    signature = sign("sha256", payload, { key: privateKey, dsaEncoding: "der" });
  } else if (type === "rsa") {
    signature = sign("sha256", payload, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
  } else throw new Error(`unsupported signing key type "${type}"`);
  return Buffer.from(signature).toString("base64");
}

/**
 * True when `signatureB64` is a valid signature of `payload` under `publicKey`. Never throws for
 * a bad signature or bad base64; it returns false.
 */
export function verifyPayloadSignature(
  publicKey: KeyObject,
  payload: Uint8Array,
  signatureB64: string,
): boolean {
  const signature = decodeSignature(signatureB64);
  if (!signature || signature.length === 0) return false;
  const type = publicKey.asymmetricKeyType;
  try {
    if (type === "ed25519") return verify(null, payload, publicKey, signature);
    if (type === "ec") {
      if (verify("sha256", payload, { key: publicKey, dsaEncoding: "der" }, signature)) return true;
      return verify("sha256", payload, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature);
    }
    if (type === "rsa") {
      const pkcs1 = { key: publicKey, padding: constants.RSA_PKCS1_PADDING };
      if (verify("sha256", payload, pkcs1, signature)) return true;
      const pss = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING };
      return verify("sha256", payload, pss, signature);
    }
  } catch {
    return false; // malformed DER and the like
  }
  return false;
}

function decodeSignature(text: string): Uint8Array | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) return undefined;
  return new Uint8Array(Buffer.from(trimmed, "base64"));
}
