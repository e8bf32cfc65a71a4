/**
 * Retention rules: which tags of a repository to drop (beyond the newest N, unless a keep
 * pattern protects them) and how long untagged manifests may stay. Pure: decides, never deletes.
 * @module
 */
import type { Digest } from "../oci/digest.ts";

/** One retention rule, resolved from the config. */
export interface RetentionRule {
  matches: (repository: string) => boolean;
  keepLast?: number;
  keepTags?: RegExp;
  /** Milliseconds an untagged manifest may stay. */
  untaggedAfter?: number;
}

/** Tags that cosign and the referrers fallback maintain; they follow their subject instead. */
export const ATTACHMENT_TAG = /^(sha256)-([a-f0-9]{64})(\.(sig|att|sbom))?$/;

/**
 * The tags a rule drops: all ordinary tags but the newest `keepLast` (by last update), except
 * those matching `keepTags`. Attachment tags are never dropped here.
 */
export function tagsToDrop(
  tags: { name: string; digest: Digest; updatedAt: number }[],
  rule: RetentionRule,
): { name: string; digest: Digest; updatedAt: number }[] {
  if (rule.keepLast === undefined) return [];
  const ordinary = tags
    .filter((t) => !ATTACHMENT_TAG.test(t.name))
    .sort((a, b) => b.updatedAt - a.updatedAt || (a.name < b.name ? -1 : 1));
  return ordinary.slice(rule.keepLast).filter((t) => !rule.keepTags?.test(t.name));
}
