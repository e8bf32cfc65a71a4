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
    checks: [{ name: "metadata", check: () => Promise.reject(new Error("/secret/path gone")) }],
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

Deno.test("/readyz names the dependency, never the internal error", async () => {
  const res = await app(false).request("/readyz");
  assertEquals(res.status, 503);
  const text = await res.text();
  assertEquals(JSON.parse(text).errors[0].detail, { dependencies: ["metadata"] });
  assertEquals(text.includes("/secret/path"), false);
});
