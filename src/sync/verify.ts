/**
 * `onlyVerified`: before an image is mirrored, its cosign signatures (the `.sig` tag and
 * referrers of the cosign signature artifact type) are fetched from the upstream and checked
 * with the mirror's keys by the same function the cosign plugin and `wharf verify` use: an
 * ECDSA/Ed25519/RSA signature over the simple-signing payload, which must name the image's
 * digest. Presence alone is not enough.
 * @module
 */
import type { KeyObject } from "node:crypto";
import type { RegistryClient } from "../client/registry_client.ts";
import { parsePublicKey } from "../cosign/keys.ts";
import { fetchAttachmentLayers } from "../cosign/remote.ts";
import { verifySimpleSigning } from "../cosign/verify.ts";
import { SIGNATURE_ANNOTATION } from "../cosign/attachments.ts";

/** A named public key. */
export interface MirrorKey {
  path: string;
  key: KeyObject;
}

/** Reads the PEM public keys of a mirror. */
export async function loadKeys(paths: string[]): Promise<MirrorKey[]> {
  const keys: MirrorKey[] = [];
  for (const path of paths) {
    let pem: string;
    try {
      pem = await Deno.readTextFile(path);
    } catch (err) {
      throw new Error(`cannot read key ${path}: ${(err as Error).message}`);
    }
    keys.push({ path, key: parsePublicKey(pem) });
  }
  return keys;
}

/** The outcome of checking an image's signatures. */
export type Verification = { ok: true; key: string } | { ok: false; reason: string };

/** Checks whether any cosign signature of `digest` in the upstream verifies with `keys`. */
export async function verifyUpstreamImage(
  client: RegistryClient,
  repository: string,
  digest: string,
  keys: MirrorKey[],
): Promise<Verification> {
  const layers = await fetchAttachmentLayers(client, repository, digest, "sig");
  if (layers.length === 0) return { ok: false, reason: "no cosign signature" };
  const reasons = new Set<string>();
  for (const layer of layers) {
    const signature = layer.descriptor.annotations?.[SIGNATURE_ANNOTATION];
    for (const { path, key } of keys) {
      const result = verifySimpleSigning(layer.bytes, signature, key, { imageDigest: digest });
      if (result.ok) return { ok: true, key: path };
      reasons.add(result.reason);
    }
  }
  return { ok: false, reason: [...reasons].join("; ") };
}
