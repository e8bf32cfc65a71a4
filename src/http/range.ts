/**
 * Parsing of the byte-range headers the registry reads: `Range` on blob GET (RFC 9110) and
 * `Content-Range` on chunked upload PATCH (the distribution spec's `<start>-<end>`).
 * @module
 */
import type { ByteRange } from "../storage/blob_store.ts";

/**
 * The single range a `Range` header asks for within a blob of `size` bytes: a range, `null`
 * to serve the whole blob (no header, multiple ranges or a unit other than bytes), or
 * `"unsatisfiable"` (answer 416).
 */
export function parseRange(
  header: string | null,
  size: number,
): ByteRange | null | "unsatisfiable" {
  if (header === null) return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return null; // several ranges or another unit: the whole blob is a valid answer
  const [, first, last] = match;
  if (first === "" && last === "") return "unsatisfiable";
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== "" && Number(last) < start)) return "unsatisfiable";
  return { start, end };
}

/**
 * The `<start>-<end>` (inclusive) of a chunk's `Content-Range`, or null when the header is
 * absent; `"invalid"` when present but malformed. Accepts an optional `bytes ` prefix and
 * `/<total>` suffix as some clients send them.
 */
export function parseContentRange(header: string | null): ByteRange | null | "invalid" {
  if (header === null) return null;
  const match = /^\s*(?:bytes[ =])?\s*(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(header);
  if (!match) return "invalid";
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) return "invalid";
  return { start, end };
}
