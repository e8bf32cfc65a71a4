/**
 * Content digests (`<algorithm>:<encoded>`): parsing, validation and hashing of small buffers.
 * Blobs are hashed while streaming in the blob store; this module only knows the format.
 * @module
 */
import { createHash } from "node:crypto";
import { RegistryError } from "./errors.ts";

/** Digest algorithms Wharf stores and verifies, with the length of their hex encoding. */
export const ALGORITHMS = { sha256: 64, sha512: 128 } as const;

/** A supported digest algorithm. */
export type Algorithm = keyof typeof ALGORITHMS;

/** A validated digest, e.g. `sha256:9f86…`. */
export type Digest = string & { readonly __digest: unique symbol };

/** The parts of a validated digest. */
export interface ParsedDigest {
  algorithm: Algorithm;
  hex: string;
}

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Splits and validates a digest string; throws `DIGEST_INVALID` for anything that is not a
 * well-formed sha256/sha512 digest with lowercase hex of the right length.
 */
export function parseDigest(value: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(value)) {
    throw new RegistryError("DIGEST_INVALID", "invalid digest", { detail: { digest: value } });
  }
  const [algorithm, hex] = value.split(":", 2);
  const length = ALGORITHMS[algorithm as Algorithm];
  if (length === undefined) {
    throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm "${algorithm}"`, {
      detail: { digest: value },
    });
  }
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError("DIGEST_INVALID", "invalid digest encoding", {
      detail: { digest: value },
    });
  }
  return { algorithm: algorithm as Algorithm, hex };
}

/** Validates `value` and returns it typed as a {@link Digest}. */
export function toDigest(value: string): Digest {
  parseDigest(value);
  return value as Digest;
}

/** True when `value` has digest syntax (`alg:encoded`), supported or not. */
export function looksLikeDigest(value: string): boolean {
  return DIGEST_GRAMMAR.test(value);
}

/** Digest of an in-memory buffer (manifests, configs); blobs are hashed while streamed. */
export function digestOf(bytes: Uint8Array, algorithm: Algorithm = "sha256"): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest;
}
