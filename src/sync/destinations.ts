/**
 * Where a mirror writes: the local repositories its `repositories` entries map to through
 * `destination`, and whether a caller may push to all of them. Starting a run over HTTP asks
 * exactly that (`POST /wharf/v1/sync/mirrors/<name>/runs`, see `src/http/routes/sync.ts`).
 * @module
 */
import type { Access } from "../registry/access.ts";
import { isGlob, localRepository } from "./filters.ts";
import type { MirrorConfig } from "./schema.ts";

const WILDCARD = /[*?[{]/;

/**
 * The local repositories `mirror` may write to: an explicit entry's local name, and for a glob
 * entry the glob its matches land in (`team/*` with prefix `mirror/` → `mirror/team/*`). When
 * `stripPrefix` would cut only some of a glob's matches, `<prefix>**` stands for them.
 *
 * @example
 * ```ts
 * destinationPatterns(mirror); // ["mirror/hub/alpine", "mirror/hub/team/*"]
 * ```
 */
export function destinationPatterns(
  mirror: Pick<MirrorConfig, "repositories" | "destination">,
): string[] {
  const { prefix, stripPrefix } = mirror.destination;
  const patterns = new Set<string>();
  for (const entry of mirror.repositories) {
    if (!isGlob(entry)) {
      patterns.add(localRepository(entry, mirror.destination));
      continue;
    }
    const literal = entry.slice(0, entry.search(WILDCARD));
    if (stripPrefix && literal.startsWith(stripPrefix)) {
      patterns.add(prefix + entry.slice(stripPrefix.length));
      continue;
    }
    patterns.add(prefix + entry);
    // Some matches may start with stripPrefix (and lose it), others not: anything under prefix.
    if (stripPrefix && stripPrefix.startsWith(literal)) patterns.add(`${prefix}**`);
  }
  return [...patterns];
}

/**
 * The first of `mirror`'s destinations `access` may not push to, or undefined when it may push
 * to all. A glob is asked twice: as written (a rule `mirror/**` or `mirror/team/*` matches the
 * name `mirror/team/*`) and as a sample name of each wildcard's reach (`*` one segment of several
 * characters, `**` two segments), so a rule covering only part of it (`mirror/team/?`,
 * `mirror/team/a*`, `mirror/*` for `mirror/**`) is not enough. A token's grants name concrete
 * repositories only, so no token passes for a glob.
 */
export function unwritableDestination(
  access: Access,
  mirror: Pick<MirrorConfig, "repositories" | "destination">,
): string | undefined {
  return destinationPatterns(mirror).find((pattern) =>
    !probes(pattern).every((name) => access.can(name, "push"))
  );
}

function probes(pattern: string): string[] {
  if (!isGlob(pattern)) return [pattern];
  const sample = pattern.replace(
    /\*\*|\*|\?/g,
    (wildcard) => wildcard === "**" ? "x0/y1" : wildcard === "*" ? "x0-y1.z2" : "q",
  );
  return [pattern, sample];
}
