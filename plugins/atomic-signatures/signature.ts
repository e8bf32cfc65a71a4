/**
 * The "atomic" signature objects of the signatures extension API (OpenShift, Pulp,
 * containers/image): validation of what clients `PUT`, and what the plugin learns from the
 * signed payload. Pure.
 * @module
 */
import type { Digest } from "../../src/plugins/api.ts";
import { OpenPgpError, readSignedMessage } from "./openpgp.ts";

/** Largest signature (decoded `content`) accepted, as Pulp's `SIGNATURE_PAYLOAD_MAX_SIZE`. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;

/** Signature type of simple signing payloads (containers/image `signature/simple.go`). */
export const ATOMIC_PAYLOAD_TYPE = "atomic container signature";

/**
 * One signature as the API sends and receives it. The JSON field is `schemaVersion` (what
 * containers/image reads and writes), not the `version` of the prose documentation.
 */
export interface ExtensionSignature {
  schemaVersion: 2;
  type: "atomic";
  /** `<manifest digest>@<32 lowercase hex>`. */
  name: string;
  /** Standard base64 of the signed OpenPGP message. */
  content: string;
}

/** A signature `PUT` that cannot be stored; the message says why. */
export class SignatureError extends Error {
  override name = "SignatureError";
}

/** A validated signature, decoded, with what its payload claims. */
export interface AcceptedSignature {
  name: string;
  bytes: Uint8Array;
  /** Issuer key id and fingerprint and the payload's identity, when readable. */
  detail: Record<string, unknown>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Validates the body of `PUT /extensions/v2/<name>/signatures/<digest>`: one object with
 * `schemaVersion` 2, `type` "atomic", `name` = `<digest>@<32 hex>` for this very digest, and
 * `content` = standard base64 of at most {@link MAX_SIGNATURE_BYTES} bytes. When the content is
 * a readable OpenPGP message, its payload must be an atomic container signature of `digest`.
 * Throws {@link SignatureError}.
 *
 * @example
 * ```ts
 * const sig = parseSignaturePut(JSON.parse(text), digest);
 * sig.detail.keyId; // "7D3A1C…"
 * ```
 */
export function parseSignaturePut(body: unknown, digest: Digest): AcceptedSignature {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new SignatureError("the body must be one signature object");
  }
  const { schemaVersion, type, name, content } = body as Record<string, unknown>;
  if (schemaVersion !== 2) throw new SignatureError("schemaVersion must be 2");
  if (type !== "atomic") throw new SignatureError('type must be "atomic"');
  if (typeof name !== "string" || !isSignatureName(name, digest)) {
    throw new SignatureError(`name must be "${digest}@" followed by 32 lowercase hex digits`);
  }
  if (typeof content !== "string" || content === "" || !BASE64.test(content)) {
    throw new SignatureError("content must be non-empty standard base64");
  }
  if (content.length / 4 * 3 > MAX_SIGNATURE_BYTES + 2) {
    throw new SignatureError(`content is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  }
  const bytes = Uint8Array.fromBase64(content);
  return { name, bytes, detail: payloadDetail(bytes, digest) };
}

/** True for `<digest>@<32 lowercase hex>` of exactly `digest`. */
export function isSignatureName(name: string, digest: Digest): boolean {
  const at = name.lastIndexOf("@");
  return name.slice(0, at) === digest && /^[0-9a-f]{32}$/.test(name.slice(at + 1));
}

/** The object the API lists for a stored signature. */
export function extensionSignature(name: string, bytes: Uint8Array): ExtensionSignature {
  return { schemaVersion: 2, type: "atomic", name, content: bytes.toBase64() };
}

function payloadDetail(bytes: Uint8Array, digest: Digest): Record<string, unknown> {
  if (bytes.length === 0 || (bytes[0] & 0x80) === 0) {
    throw new SignatureError("content is not an OpenPGP message");
  }
  let message;
  try {
    message = readSignedMessage(bytes);
  } catch (err) {
    if (!(err instanceof OpenPgpError)) throw err;
    // Some valid messages (BZip2-compressed, say) are beyond this reader: keep them unread.
    return { payload: "unreadable", reason: err.message };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(message.literal));
  } catch {
    throw new SignatureError("the signed payload is not JSON");
  }
  const critical = (payload as { critical?: Record<string, Record<string, unknown>> })?.critical;
  if (critical?.type as unknown !== ATOMIC_PAYLOAD_TYPE) {
    throw new SignatureError(`the signed payload is not an "${ATOMIC_PAYLOAD_TYPE}"`);
  }
  const signed = critical?.image?.["docker-manifest-digest"];
  if (signed !== digest) {
    throw new SignatureError("the signed payload names another manifest", { cause: signed });
  }
  return {
    keyId: message.keyId,
    ...(message.fingerprint ? { fingerprint: message.fingerprint } : {}),
    ...(message.created !== null ? { created: message.created } : {}),
    identity: critical?.identity?.["docker-reference"] ?? null,
  };
}
