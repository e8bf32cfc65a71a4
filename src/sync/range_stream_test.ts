import { assertEquals, assertOk } from "../../tests/assert.ts";
import { sliceStream } from "./range_stream.ts";

/** A stream of `bytes` in chunks of `size`; `cancelled` tells whether it was cancelled. */
function chunked(bytes: Uint8Array, size: number) {
  const state = { cancelled: false, offset: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(state.offset, state.offset + size));
      state.offset += size;
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const BYTES = Uint8Array.from({ length: 100 }, (_, i) => i);

Deno.test("sliceStream: exact bytes across chunk boundaries, then the source is cancelled", async () => {
  for (const size of [1, 7, 10, 100, 1000]) {
    for (const [start, end] of [[0, 0], [0, 99], [5, 5], [9, 10], [10, 19], [37, 81], [99, 99]]) {
      const { stream, state } = chunked(BYTES, size);
      const got = new Uint8Array(
        await new Response(sliceStream(stream, { start, end })).arrayBuffer(),
      );
      assertEquals(got, BYTES.slice(start, end + 1), `chunks of ${size}, ${start}-${end}`);
      // Cancelled once the range is done, unless the source had nothing more to give.
      assertOk(state.cancelled || state.offset >= BYTES.length, `cancelled after ${start}-${end}`);
    }
  }
});

Deno.test("sliceStream: a source that ends before the range errors the slice", async () => {
  const { stream } = chunked(BYTES, 10);
  const error = await new Response(sliceStream(stream, { start: 90, end: 120 })).arrayBuffer()
    .then(() => null, (err) => err);
  assertOk(error instanceof Error, "the slice failed");
});
