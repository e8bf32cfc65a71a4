/**
 * `n`/`last` pagination of tag and repository listings, and the RFC 8288 `Link` header that
 * points to the next page.
 * @module
 */
import { RegistryError } from "../oci/errors.ts";

/** Most entries returned in one page, whatever `n` asks for. */
export const MAX_PAGE = 10_000;

/** A page request. */
export interface PageRequest {
  limit: number;
  last?: string;
  /** True when the client sent `n` (the `Link` then repeats it). */
  explicit: boolean;
}

/** Reads `n` and `last`; `n` must be a non-negative integer (`PAGINATION_NUMBER_INVALID`). */
export function pageRequest(n: string | undefined, last: string | undefined): PageRequest {
  if (n === undefined) return { limit: MAX_PAGE, last: last || undefined, explicit: false };
  if (!/^\d{1,9}$/.test(n)) {
    throw new RegistryError("PAGINATION_NUMBER_INVALID", "n must be a non-negative integer", {
      detail: { n },
    });
  }
  return { limit: Math.min(Number(n), MAX_PAGE), last: last || undefined, explicit: true };
}

/** The `Link` header value for the page after `lastItem`. */
export function nextLink(path: string, request: PageRequest, lastItem: string): string {
  const query = new URLSearchParams({ n: String(request.limit), last: lastItem });
  return `<${path}?${query}>; rel="next"`;
}
