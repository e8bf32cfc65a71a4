/**
 * Bounded reads: a whole body into memory only when it is small enough (manifests, signature
 * payloads), failing as soon as it grows past the bound.
 * @module
 */

/**
 * Reads `body` whole if it has at most `limit` bytes; otherwise cancels it and throws
 * `tooLarge()`. A `declared` length over the limit fails before reading anything.
 */
export async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  tooLarge: () => Error,
  declared?: number,
): Promise<Uint8Array<ArrayBuffer>> {
  if (declared !== undefined && declared > limit) {
    await body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body ?? []) {
    total += chunk.length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
