/**
 * Which upstream tags and platforms a mirror copies, and where a repository lands locally.
 * Pure functions of the mirror's config.
 * @module
 */
import semver from "semver";
import type { MirrorConfig } from "./schema.ts";

/**
 * Tags that travel with a subject rather than being images of their own: cosign's
 * `sha256-<hex>.sig|.att|.sbom` and the referrers tag schema's `sha256-<hex>`.
 */
const COMPANION = /^(sha256)-([a-f0-9]{64})(?:\.(sig|att|sbom))?$/;

/** The subject digest a companion tag belongs to, or null for an ordinary tag. */
export function companionSubject(tag: string): string | null {
  const match = COMPANION.exec(tag);
  return match ? `${match[1]}:${match[2]}` : null;
}

/** True for the referrers tag schema's fallback index tag `sha256-<hex>` (no suffix). */
export function isReferrersTag(tag: string): boolean {
  const match = COMPANION.exec(tag);
  return match !== null && match[3] === undefined;
}

/**
 * The ordinary tags a mirror copies, in copy order: regex include (any) and exclude (none),
 * then the semver range, then the newest N. "Newest" is by version for tags that read as
 * versions (`1.2`, `v1.2.3`), which rank above the others; the others by name, descending.
 * Companion tags are never selected here: they follow their subjects.
 *
 * @example
 * ```ts
 * selectTags(["1.1", "1.2.0", "2.0", "latest"], { include: [], exclude: [], semver: ">=1.2 <2" });
 * // ["1.2.0"]
 * ```
 */
export function selectTags(tags: string[], filter: MirrorConfig["tags"]): string[] {
  const include = filter.include.map((re) => new RegExp(re));
  const exclude = filter.exclude.map((re) => new RegExp(re));
  let selected = tags.filter((tag) =>
    companionSubject(tag) === null &&
    (include.length === 0 || include.some((re) => re.test(tag))) &&
    !exclude.some((re) => re.test(tag))
  );
  if (filter.semver) {
    const range = filter.semver;
    selected = selected.filter((tag) => {
      const version = versionOf(tag);
      return version !== null && semver.satisfies(version, range, { loose: true });
    });
  }
  selected.sort(newestFirst);
  if (filter.newest !== undefined) selected = selected.slice(0, filter.newest);
  return selected;
}

/** A tag read as a version (`v1.2` → `1.2.0`), or null when it is none. */
export function versionOf(tag: string): string | null {
  const strict = semver.valid(tag, { loose: true });
  if (strict) return strict;
  if (!/^v?\d+(\.\d+){0,2}$/.test(tag)) return null;
  return semver.coerce(tag)?.version ?? null;
}

function newestFirst(a: string, b: string): number {
  const va = versionOf(a);
  const vb = versionOf(b);
  if (va && vb) return semver.rcompare(va, vb) || (a < b ? 1 : a > b ? -1 : 0);
  if (va) return -1;
  if (vb) return 1;
  return a < b ? 1 : a > b ? -1 : 0;
}

/** True for an index entry's platform when `platforms` (`os/arch[/variant]`) is empty or names it. */
export function platformSelected(
  platform: { os?: string; architecture?: string; variant?: string } | undefined,
  platforms: string[],
): boolean {
  if (platforms.length === 0) return true;
  if (!platform) return false;
  return platforms.some((wanted) => {
    const [os, architecture, variant] = wanted.split("/");
    return platform.os === os && platform.architecture === architecture &&
      (variant === undefined || platform.variant === variant);
  });
}

/** The local repository of an upstream one: strip the prefix, then add the destination prefix. */
export function localRepository(
  upstream: string,
  destination: MirrorConfig["destination"],
): string {
  const stripped = destination.stripPrefix && upstream.startsWith(destination.stripPrefix)
    ? upstream.slice(destination.stripPrefix.length)
    : upstream;
  return `${destination.prefix}${stripped}`;
}

/** True when a configured repository entry is a glob over the upstream catalog. */
export function isGlob(entry: string): boolean {
  return /[*?[{]/.test(entry);
}
