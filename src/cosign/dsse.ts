/**
 * cosign attestations: an in-toto statement about the image, wrapped in a signed DSSE envelope
 * (secure-systems-lab/go-securesystemslib `dsse`), as `cosign attest --key` writes them into the
 * `.att` layer.
 * @module
 */
import { Buffer } from "node:buffer";
import type { KeyObject } from "node:crypto";
import { signPayload, verifyPayloadSignature } from "./signature.ts";

/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
/** in-toto statement `_type` cosign v2 writes. */
export const IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1";

/** cosign's `--type` short names and the predicate type URIs they stand for. */
export const PREDICATE_TYPES: Record<string, string> = {
  custom: "https://cosign.sigstore.dev/attestation/v1",
  slsaprovenance: "https://slsa.dev/provenance/v0.2",
  slsaprovenance02: "https://slsa.dev/provenance/v0.2",
  slsaprovenance1: "https://slsa.dev/provenance/v1",
  spdx: "https://spdx.dev/Document",
  spdxjson: "https://spdx.dev/Document",
  cyclonedx: "https://cyclonedx.org/bom",
  link: "https://in-toto.io/Link/v1",
  vuln: "https://cosign.sigstore.dev/attestation/vuln/v1",
  openvex: "https://openvex.dev/ns",
};

/** A DSSE envelope. */
export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/** An in-toto statement (v0.1 / v1 share this shape). */
export interface Statement {
  _type: string;
  predicateType: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicate: unknown;
}

/** The predicate type URI for a `--type` value: a short name or a URI itself. */
export function predicateTypeUri(type: string): string {
  const known = PREDICATE_TYPES[type];
  if (known) return known;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(type)) return type;
  throw new Error(
    `unknown predicate type "${type}" (use a URI or one of ${
      Object.keys(PREDICATE_TYPES).join(", ")
    })`,
  );
}

/**
 * The predicate cosign builds from a predicate file: for `custom` a `{Data, Timestamp}` wrapper
 * around the file text, else the file's JSON (SPDX tag-value text stays a string).
 */
export function buildPredicate(type: string, file: Uint8Array, now = new Date()): unknown {
  const text = new TextDecoder().decode(file);
  if (type === "custom") {
    return { Data: text, Timestamp: now.toISOString().replace(/\.\d{3}Z$/, "Z") };
  }
  try {
    return JSON.parse(text);
  } catch {
    if (type === "spdx") return text;
    throw new Error(`predicate file is not JSON (required for --type ${type})`);
  }
}

/** The statement about `subjectName@digest` (subject name: `registry/repository`). */
export function buildStatement(
  predicateType: string,
  predicate: unknown,
  subjectName: string,
  digest: string,
): Statement {
  const [algorithm, hex] = digest.split(":", 2);
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    predicateType,
    subject: [{ name: subjectName, digest: { [algorithm]: hex } }],
    predicate,
  };
}

/** DSSE pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** Signs `payload` into an envelope (JSON bytes), one signature with an empty `keyid`. */
export function signEnvelope(
  privateKey: KeyObject,
  payload: Uint8Array,
  payloadType = IN_TOTO_PAYLOAD_TYPE,
): Uint8Array {
  const envelope: Envelope = {
    payloadType,
    payload: Buffer.from(payload).toString("base64"),
    signatures: [{ keyid: "", sig: signPayload(privateKey, pae(payloadType, payload)) }],
  };
  return new TextEncoder().encode(JSON.stringify(envelope));
}

/** The outcome of {@link verifyEnvelope}. */
export type EnvelopeResult =
  | { ok: true; payloadType: string; payload: Uint8Array }
  | { ok: false; reason: string };

/** Checks that any signature of an envelope (JSON bytes) verifies under `publicKey`. */
export function verifyEnvelope(bytes: Uint8Array, publicKey: KeyObject): EnvelopeResult {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { ok: false, reason: "envelope is not JSON" };
  }
  if (typeof envelope?.payloadType !== "string" || typeof envelope.payload !== "string") {
    return { ok: false, reason: "envelope lacks payloadType or payload" };
  }
  const payload = new Uint8Array(Buffer.from(envelope.payload, "base64"));
  const message = pae(envelope.payloadType, payload);
  const signed = (envelope.signatures ?? []).some((s) =>
    typeof s?.sig === "string" && verifyPayloadSignature(publicKey, message, s.sig)
  );
  if (!signed) return { ok: false, reason: "no envelope signature verifies with the given key" };
  return { ok: true, payloadType: envelope.payloadType, payload };
}
