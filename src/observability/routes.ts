/**
 * Operations endpoints: `GET /metrics` (Prometheus text), `GET /healthz` (the process is up)
 * and `GET /readyz` (the metadata database and the blob store answer). They are registered
 * before authentication: probes and scrapers carry no registry credentials.
 * @module
 */
import type { Context, Hono } from "hono";
import { isLoopback } from "../auth/authenticator.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Logger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";
import { errorResponse } from "../http/errors.ts";
import { type HealthCheck, runChecks } from "./health.ts";
import type { Metrics } from "./metrics.ts";

/** Options of {@link operationsRoutes}. */
export interface OperationsOptions {
  metrics: Metrics;
  /** Dependencies `/readyz` checks. */
  checks: HealthCheck[];
  log: Logger;
  /** Serve `/metrics` to every address, not only to loopback callers. */
  publicMetrics?: boolean;
}

/** Registers `/metrics`, `/healthz` and `/readyz`. */
export function operationsRoutes(app: Hono<AppEnv>, options: OperationsOptions): void {
  const { metrics, checks, log } = options;

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const results = await runChecks(checks);
    const failed = results.filter((r) => !r.ok);
    if (failed.length === 0) {
      return c.json({
        status: "ready",
        checks: Object.fromEntries(results.map((r) => [r.name, "ok"])),
      });
    }
    for (const f of failed) {
      log.warn("not ready", { requestId: c.get("requestId"), dependency: f.name, error: f.error });
    }
    const names = failed.map((f) => f.name);
    return errorResponse(
      new RegistryError("UNAVAILABLE", `not ready: ${names.join(", ")} failing`, {
        detail: { dependencies: names },
      }),
      log,
    );
  });

  app.get("/metrics", async (c) => {
    if (!options.publicMetrics && !isLoopback(remoteAddress(c))) {
      return errorResponse(
        new RegistryError(
          "DENIED",
          "metrics are served to loopback callers only; set metrics.public: true to open them",
        ),
        log,
      );
    }
    return new Response(await metrics.render(), {
      headers: { "Content-Type": metrics.contentType },
    });
  });
}

function remoteAddress(c: Context<AppEnv>): string {
  return (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname ?? "";
}
