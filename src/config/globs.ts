/**
 * Repository globs as the config writes them: `*` matches within one path segment, `**` across
 * segments (`team/*` matches `team/app`, `team/**` also `team/app/dev`).
 * @module
 */
import picomatch from "picomatch";

/** A predicate that is true for repository names matching any of `globs`. */
export function repositoryMatcher(globs: string[]): (repository: string) => boolean {
  return picomatch(globs, { dot: true });
}
