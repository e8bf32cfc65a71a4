/**
 * The outermost HTTP middleware: gives every request an id, and once its response has been
 * delivered records it in the metrics and writes one access log line. Request bodies are
 * counted as the handler streams them; response bodies by their declared `Content-Length`
 * once delivered, so blob downloads keep Deno's native file-to-socket path.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";
import type { Metrics } from "./metrics.ts";
import type { BodyDrain } from "./drain.ts";
import { RegistryError } from "../oci/errors.ts";
import { errorResponse } from "../http/errors.ts";

/** The route label of requests that matched no route (bounded, unlike raw paths). */
export const UNMATCHED = "unmatched";

/** Options of {@link observe}. */
export interface ObserveOptions {
  metrics: Metrics;
  /** For errors raised here (a body refused while shutting down). */
  log: Logger;
  /** Tracks request bodies for shutdown; refuses new ones once draining. */
  drain?: BodyDrain;
  /** Where access lines go (`msg: "request"`, level info); none when absent. */
  accessLog?: Logger;
}

/** Responses larger than this are reported once delivered, smaller ones when answered. */
const STREAMED_BYTES = 64 * 1024;
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const REQUEST_ID = /^[\w.:-]{1,128}$/;
/** Query parameters logged as they are; every other value is replaced by `REDACTED`. */
const LOGGED_QUERY = new Set([
  "digest",
  "mount",
  "from",
  "n",
  "last",
  "artifactType",
  "scope",
  "service",
  "account",
]);

/**
 * Middleware that sets `requestId` (a sane incoming `X-Request-Id`, else a new UUID), counts
 * the request body, and reports the request when its response is complete.
 *
 * @example
 * ```ts
 * app.use(observe({ metrics, accessLog: log }));
 * ```
 */
export function observe(options: ObserveOptions): MiddlewareHandler<AppEnv> {
  const { metrics, accessLog, drain, log } = options;
  return async (c, next) => {
    const start = performance.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming !== undefined && REQUEST_ID.test(incoming)
      ? incoming
      : crypto.randomUUID();
    c.set("requestId", requestId);
    metrics.requestStarted();

    // Read the address and URL now: Deno closes the request once a client is gone.
    const where = accessLog && { url: c.req.url, remote: remoteAddress(c) };
    const received = { bytes: 0, done: () => {} };
    try {
      const raw = c.req.raw;
      if (hasBody(raw.headers) && raw.body !== null) {
        if (drain?.draining) {
          throw new RegistryError("UNAVAILABLE", "the registry is shutting down", {
            headers: { "Connection": "close" },
          });
        }
        if (drain) received.done = drain.begin();
        // Not `new Request(raw, …)`: that would inherit (and so touch) Deno's request signal.
        c.req.raw = new Request(raw.url, {
          method: raw.method,
          headers: raw.headers,
          body: counted(raw.body, received),
        });
      }
      await next();
    } catch (err) {
      c.res = errorResponse(err, log, requestId);
    } finally {
      received.done();
      const res = c.res;
      res.headers.set("X-Request-Id", requestId);
      // Never `res.body`: reading it turns a static body into a stream, a slower path in Deno.
      const declared = c.req.method === "HEAD"
        ? 0
        : Number(res.headers.get("content-length") ?? 0) || 0;
      const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
      const route = routeOf(c);
      const line = where && {
        requestId,
        method: c.req.method,
        route,
        path: loggedPath(where.url, c.req.path),
        status: res.status,
        user: c.var.auth?.user ?? null,
        remote: where.remote,
      };
      const finish = (complete: boolean) => {
        const seconds = (performance.now() - start) / 1000;
        const bytesOut = complete ? declared : 0;
        metrics.request({
          method,
          route,
          status: res.status,
          seconds,
          bytesIn: received.bytes,
          bytesOut,
          complete,
        });
        if (!line) return;
        accessLog?.info("request", {
          ...line,
          durationMs: Math.round(seconds * 100_000) / 100,
          bytesIn: received.bytes,
          bytesOut,
          ...(complete ? {} : { incomplete: true }),
        });
      };
      // Large bodies (blobs) are done when Deno settles `completed`: the last byte is out, or
      // the client went away. Small ones go out in one write and are done now; waiting for
      // them measurably slows the manifest hot path. In-process requests have no `completed`.
      const completed = declared > STREAMED_BYTES
        ? (c.env as Partial<Deno.ServeHandlerInfo> | undefined)?.completed
        : undefined;
      if (completed) {
        completed.then(() => finish(true), () => finish(false)).catch(reportBug);
      } else finish(true);
    }
  };
}

/**
 * The route pattern that handled (or would have handled) the request, e.g.
 * `/v2/:name{.+}/blobs/:digest`: the first matched handler, skipping `app.use` middleware.
 */
export function routeOf(c: Context): string {
  const routes = c.req.matchedRoutes;
  let fallback = UNMATCHED;
  for (const route of routes) {
    if (route.method !== "ALL") return route.path;
    if (route.path !== "/*") fallback = route.path;
  }
  return fallback;
}

/**
 * The path with its query for the access log: values of parameters other than the known
 * harmless ones (`digest`, `mount`, `n`, …) become `REDACTED`, so tokens, signatures and
 * upload state never reach the log.
 *
 * @example
 * ```ts
 * loggedPath("http://h/v2/a/blobs/uploads/1?_state=abc&digest=sha256:00", "/v2/a/blobs/uploads/1");
 * // "/v2/a/blobs/uploads/1?_state=REDACTED&digest=sha256:00"
 * ```
 */
export function loggedPath(url: string, path: string): string {
  const mark = url.indexOf("?");
  if (mark < 0 || mark === url.length - 1) return path;
  const pairs = url.slice(mark + 1).split("&").map((pair) => {
    const equals = pair.indexOf("=");
    const key = equals < 0 ? pair : pair.slice(0, equals);
    return LOGGED_QUERY.has(key) ? pair : `${key}=REDACTED`;
  });
  return `${path}?${pairs.join("&")}`;
}

function remoteAddress(c: Context): string | undefined {
  try {
    return (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname;
  } catch {
    return undefined; // the client is already gone
  }
}

/** A failure in recording must never take the process down (it would as an unhandled rejection). */
function reportBug(err: unknown): void {
  console.error(
    JSON.stringify({ level: "error", msg: "recording a request failed", error: String(err) }),
  );
}

/** `body`, counting the bytes the consumer reads; `counter.done` once it ends either way. */
function counted(
  body: ReadableStream<Uint8Array>,
  counter: { bytes: number; done: () => void },
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        counter.done();
        throw err;
      }
      if (chunk.done) {
        counter.done();
        controller.close();
        return;
      }
      counter.bytes += chunk.value.byteLength;
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      counter.done();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Whether the request declares a body, judged from its headers alone (cheap for GETs). */
function hasBody(headers: Headers): boolean {
  const length = headers.get("content-length");
  return length !== null ? length !== "0" : headers.has("transfer-encoding");
}
