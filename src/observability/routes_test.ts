import { Hono } from "hono";
import { assertEquals } from "../../tests/assert.ts";
import { createLogger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";
import { createMetrics } from "./metrics.ts";
import { operationsRoutes } from "./routes.ts";

function app(publicMetrics: boolean) {
  const app = new Hono<AppEnv>();
  operationsRoutes(app, {
    metrics: createMetrics(),
    checks: [
      {
        name: "metadata",
        driver: "postgres",
        check: () => Promise.reject(new Error("/secret/path gone")),
      },
      { name: "storage", driver: "s3", check: () => Promise.resolve() },
    ],
    log: createLogger({ write: () => {} }),
    publicMetrics,
  });
  return app;
}

const from = (hostname: string) => ({ remoteAddr: { hostname } });

Deno.test("/metrics: loopback always, other addresses only with metrics.public", async () => {
  assertEquals((await app(false).request("/metrics", {}, from("127.0.0.1"))).status, 200);
  assertEquals((await app(false).request("/metrics", {}, from("::1"))).status, 200);
  const refused = await app(false).request("/metrics", {}, from("10.1.2.3"));
  assertEquals(refused.status, 403);
  assertEquals((await refused.json()).errors[0].code, "DENIED");
  assertEquals((await app(true).request("/metrics", {}, from("10.1.2.3"))).status, 200);
});

Deno.test("/readyz names the failing dependency; the reason only to loopback callers", async () => {
  const local = await app(false).request("/readyz", {}, from("127.0.0.1"));
  assertEquals(local.status, 503);
  const body = await local.json();
  assertEquals(body.status, "unavailable");
  assertEquals(body.checks.metadata.driver, "postgres");
  assertEquals(body.checks.metadata.ok, false);
  assertEquals(body.checks.metadata.error, "/secret/path gone");
  assertEquals(body.checks.storage.driver, "s3");
  assertEquals(body.checks.storage.ok, true);

  const remote = await app(false).request("/readyz", {}, from("10.1.2.3"));
  assertEquals(remote.status, 503);
  const text = await remote.text();
  assertEquals(JSON.parse(text).checks.metadata.ok, false);
  assertEquals(text.includes("/secret/path"), false);
});
