/**
 * Repository names, tags and manifest references as the distribution spec defines them.
 * @module
 */
import { RegistryError } from "./errors.ts";
import { type Digest, looksLikeDigest, toDigest } from "./digest.ts";

const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Longest repository name accepted; clients cap `host:port/name` at 255 characters. */
export const MAX_NAME_LENGTH = 255;

/** True when `name` is a valid repository name. */
export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/** Validates a repository name; throws `NAME_INVALID`. */
export function assertName(name: string): string {
  if (!isValidName(name)) {
    throw new RegistryError("NAME_INVALID", "invalid repository name", { detail: { name } });
  }
  return name;
}

/** True when `tag` is a valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A manifest reference: either a tag or a digest, never both. */
export type Reference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

/**
 * Parses the `<reference>` of a manifest URL. A digest must be well formed (`DIGEST_INVALID`
 * otherwise); anything else must be a valid tag. `sha256-<hex>` is a tag, never a digest.
 * An invalid tag is reported as `MANIFEST_UNKNOWN` (404) for reads, as the conformance suite
 * expects, and as `TAG_INVALID`-like `MANIFEST_INVALID` (400) for writes.
 */
export function parseReference(value: string, mode: "read" | "write"): Reference {
  if (looksLikeDigest(value)) return { kind: "digest", digest: toDigest(value) };
  if (isValidTag(value)) return { kind: "tag", tag: value };
  if (mode === "read") {
    throw new RegistryError("MANIFEST_UNKNOWN", "manifest unknown", { detail: { tag: value } });
  }
  throw new RegistryError("MANIFEST_INVALID", "invalid tag", { detail: { tag: value } });
}
