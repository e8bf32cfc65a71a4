/**
 * Docker token scopes (`repository:<name>:<actions>`, `registry:catalog:*`): parsing from token
 * requests and the grant entries carried in tokens.
 * @module
 */

/** One resource and the actions asked for or granted on it. */
export interface ScopeEntry {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses one or more space-separated scopes. The name may itself hold a `:` (a `host:port`
 * prefix): the type ends at the first colon and the actions start after the last. Malformed
 * entries are skipped, as the token spec lets a server grant less than asked.
 *
 * @example
 * ```ts
 * parseScopes("repository:a/b:pull,push registry:catalog:*");
 * ```
 */
export function parseScopes(value: string): ScopeEntry[] {
  const entries: ScopeEntry[] = [];
  for (const part of value.split(" ")) {
    const first = part.indexOf(":");
    const last = part.lastIndexOf(":");
    if (first <= 0 || last === first) continue;
    const actions = part.slice(last + 1).split(",").filter((a) => a !== "");
    entries.push({ type: part.slice(0, first), name: part.slice(first + 1, last), actions });
  }
  return entries;
}

/** The scope string of one entry, as written in `WWW-Authenticate` challenges. */
export function formatScope(entry: ScopeEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(",")}`;
}
