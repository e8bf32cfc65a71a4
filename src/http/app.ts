/**
 * The HTTP application: the OCI distribution routes under `/v2/`, the operations endpoints
 * (`/metrics`, `/healthz`, `/readyz`), request ids, metrics and the access log, and the mapping
 * of every failure to the OCI error JSON.
 * @module
 */
import { Hono } from "hono";
import { RegistryError } from "../oci/errors.ts";
import { type AppDeps, type AppEnv, OPEN_AUTH } from "./context.ts";
import { errorResponse } from "./errors.ts";
import { authMiddleware, tokenRoutes } from "./auth.ts";
import { blobRoutes } from "./routes/blobs.ts";
import { listingRoutes } from "./routes/listings.ts";
import { manifestRoutes } from "./routes/manifests.ts";
import { uploadRoutes } from "./routes/uploads.ts";
import { artifactRoutes } from "./routes/artifacts.ts";
import { syncRoutes } from "./routes/sync.ts";
import { type Metrics, metrics as processMetrics } from "../observability/metrics.ts";
import { observe } from "../observability/middleware.ts";
import type { BodyDrain } from "../observability/drain.ts";
import { operationsRoutes } from "../observability/routes.ts";
import { metadataCheck, storageCheck } from "../observability/health.ts";

/** Operations settings of {@link createApp} (from the `log` and `metrics` config sections). */
export interface OperationsConfig {
  /** Write one access log line per request (default true). */
  accessLog?: boolean;
  /** Serve `/metrics` beyond loopback (default false). */
  publicMetrics?: boolean;
  /** Where requests are counted; the process's {@link processMetrics} by default. */
  metrics?: Metrics;
  /** Request bodies being received, for a shutdown that waits for them. */
  drain?: BodyDrain;
}

/**
 * Builds the Hono app over a registry service.
 *
 * @example
 * ```ts
 * const app = createApp({ registry, log });
 * Deno.serve({ port: 5000 }, app.fetch);
 * ```
 */
export function createApp(deps: AppDeps, operations: OperationsConfig = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const metrics = operations.metrics ?? processMetrics;

  app.use(observe({
    metrics,
    log: deps.log,
    accessLog: operations.accessLog === false ? undefined : deps.log,
    drain: operations.drain,
  }));
  app.use(async (c, next) => {
    c.set("auth", OPEN_AUTH);
    await next();
    c.res.headers.set("Docker-Distribution-API-Version", "registry/2.0");
    if (c.req.path === "/v2/" || c.req.path === "/v2") {
      for (const [name, value] of deps.plugins?.pingHeaders() ?? []) c.res.headers.set(name, value);
    }
  });
  // Before authentication: probes and scrapers carry no registry credentials.
  operationsRoutes(app, {
    metrics,
    checks: [metadataCheck(deps.registry.metadata), storageCheck(deps.registry.store)],
    log: deps.log,
    publicMetrics: operations.publicMetrics,
  });

  if (deps.auth) {
    app.use(authMiddleware(deps.auth.authenticator, deps.auth.challenge));
    if (deps.auth.authenticator.mode === "token") tokenRoutes(app, deps.auth.authenticator);
  }
  app.get("/v2/", (c) => c.json({}));
  app.get("/v2", (c) => c.json({}));
  listingRoutes(app, deps);
  uploadRoutes(app, deps);
  blobRoutes(app, deps);
  manifestRoutes(app, deps);
  syncRoutes(app, deps);
  if (deps.plugins) {
    artifactRoutes(app, deps.plugins.store);
    deps.plugins.mountRoutes(app);
  }
  app.notFound((c) => {
    const err = c.req.path.startsWith("/v2/")
      ? new RegistryError("UNSUPPORTED", "no such registry endpoint", {
        status: 404,
        detail: { method: c.req.method, path: c.req.path },
      })
      : new RegistryError("UNSUPPORTED", "not found", { status: 404 });
    return errorResponse(err, deps.log);
  });
  app.onError((err, c) => errorResponse(err, deps.log, c.get("requestId")));
  return app;
}
