/**
 * One byte range cut from a stream of a whole blob, for a `Range` request answered while the
 * whole blob downloads (pull-through).
 * @module
 */
import type { ByteRange } from "../storage/blob_store.ts";

/**
 * The bytes `range.start` to `range.end` (inclusive) of `source`. The bytes before the range are
 * read and dropped; once the range is complete `source` is cancelled (a pull-through source
 * keeps storing the rest). Errors when `source` ends before the range does.
 *
 * @example
 * ```ts
 * const tail = sliceStream(whole, { start: 1024, end: 2047 });
 * ```
 */
export function sliceStream(
  source: ReadableStream<Uint8Array>,
  range: ByteRange,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let offset = 0; // bytes of `source` read so far
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          controller.error(new Error(`blob ended at byte ${offset}, before its range`));
          return;
        }
        const first = offset;
        offset += value.length;
        if (offset <= range.start) continue;
        const from = Math.max(range.start - first, 0);
        const to = Math.min(range.end + 1 - first, value.length);
        controller.enqueue(value.subarray(from, to));
        if (offset > range.end) {
          controller.close();
          reader.cancel().catch(() => {});
        }
        return;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
