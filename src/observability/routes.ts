/**
 * Operations endpoints: `GET /metrics` (Prometheus text), `GET /healthz` (the process is up)
 * and `GET /readyz` (the metadata database and the blob store answer; each check is reported
 * with its driver, a failing one with its reason to loopback callers). They are registered
 * before authentication: probes and scrapers carry no registry credentials.
 * @module
 */
import type { Context, Hono } from "hono";
import { isLoopback } from "../auth/authenticator.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Logger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";
import { errorResponse } from "../http/errors.ts";
import { type HealthCheck, ReadinessLog, runChecks } from "./health.ts";
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

  const readiness = new ReadinessLog(log);
  app.get("/readyz", async (c) => {
    const results = await runChecks(checks);
    readiness.record(results);
    // Reasons can carry hosts and paths: for loopback callers (or with metrics.public) only.
    const details = options.publicMetrics || isLoopback(remoteAddress(c));
    const ready = results.every((r) => r.ok);
    return c.json({
      status: ready ? "ready" : "unavailable",
      checks: Object.fromEntries(results.map((r) => [r.name, {
        driver: r.driver,
        ok: r.ok,
        ms: r.ms,
        ...(r.error !== undefined && details ? { error: r.error } : {}),
      }])),
    }, ready ? 200 : 503);
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
