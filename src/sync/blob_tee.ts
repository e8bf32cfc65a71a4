/**
 * A blob streamed to a client while it is stored (pull-through): each chunk from the upstream is
 * first handed to the upload that stores the blob, then to the client, so the slower side sets
 * the pace and memory stays bounded.
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { Digest } from "../oci/digest.ts";
import type { Registry } from "../registry/registry.ts";

/** What {@link teeBlob} needs. */
export interface TeeBlobOptions {
  registry: Registry;
  log: Logger;
  repository: string;
  digest: Digest;
  /** The upstream's stream of the blob (one that errors at its end on a wrong digest). */
  upstream: ReadableStream<Uint8Array>;
  /** Runs work that outlives the client's response: the rest of the download after it left. */
  later: (what: string, work: () => Promise<void>) => void;
}

/**
 * The client's `body`, fed chunk by chunk from the upstream, and `stored`, which settles when the
 * upload commit (digest verified) is done or failed. A client that leaves early does not stop the
 * download; a wrong digest fails both sides; a store that gives up (e.g. quota) leaves the client
 * its bytes.
 *
 * @example
 * ```ts
 * const { body, stored } = teeBlob({ registry, log, repository, digest, upstream, later });
 * ```
 */
export function teeBlob(options: TeeBlobOptions): {
  body: ReadableStream<Uint8Array>;
  stored: Promise<void>;
} {
  const { registry, log, repository, digest } = options;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const stored = (async () => {
    const { id } = await registry.uploads.start(repository);
    try {
      await registry.uploads.complete(repository, id, digest, { body: readable });
    } catch (err) {
      await registry.uploads.cancel(repository, id).catch(() => {});
      log.warn("pull-through blob not stored", { repository, digest, error: String(err) });
      throw err;
    }
  })();

  const reader = options.upstream.getReader();
  let storing = true;
  let cancelled = false;
  const step = async () => {
    const result = await reader.read();
    if (storing) {
      try {
        if (result.done) await writer.close();
        else await writer.write(result.value);
      } catch {
        storing = false; // storage gave up (e.g. quota); the client still gets its bytes
      }
    }
    return result;
  };
  // One chunk at a time, in order: a pull still under way when the client leaves finishes
  // before the rest of the download goes on without it.
  let queue: Promise<unknown> = Promise.resolve();
  const next = () => {
    const result = queue.then(step);
    queue = result.catch(() => {});
    return result;
  };
  const fail = (err: unknown) => {
    if (storing) writer.abort(err).catch(() => {});
    storing = false;
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await next();
        if (cancelled) return; // stored already; the client no longer reads
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        fail(err);
        if (!cancelled) controller.error(err);
      }
    },
    cancel: () => {
      cancelled = true;
      options.later(`${repository}@${digest} after the client left`, async () => {
        try {
          while (!(await next()).done) { /* keep storing */ }
        } catch (err) {
          fail(err);
        }
      });
    },
  });
  return { body, stored };
}
