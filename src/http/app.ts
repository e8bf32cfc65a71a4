/**
 * The HTTP application: the OCI distribution routes under `/v2/`, health, and the mapping of
 * every failure to the OCI error JSON.
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

/**
 * Builds the Hono app over a registry service.
 *
 * @example
 * ```ts
 * const app = createApp({ registry, log });
 * Deno.serve({ port: 5000 }, app.fetch);
 * ```
 */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const requestId = c.req.header("x-request-id")?.slice(0, 128) ?? crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("auth", OPEN_AUTH);
    await next();
    c.res.headers.set("Docker-Distribution-API-Version", "registry/2.0");
    c.res.headers.set("X-Request-Id", requestId);
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
  if (deps.plugins) {
    artifactRoutes(app, deps.plugins.store);
    deps.plugins.mountRoutes(app);
  }
  app.get("/healthz", (c) => c.json({ status: "ok" }));

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
