import { Hono } from "hono";
import { observe } from "./middleware.ts";
import { createMetrics } from "./metrics.ts";
import { createLogger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";

function build(mw?: Parameters<typeof observe>[0]) {
  const app = new Hono<AppEnv>();
  if (mw) app.use(observe(mw));
  app.use(async (c, next) => { await next(); c.res.headers.set("Docker-Distribution-API-Version", "registry/2.0"); });
  const body = new Uint8Array(500);
  app.get("/v2/:name{.+}/manifests/:reference", () => new Response(body, { headers: { "Content-Length": "500", "Content-Type": "x" } }));
  return app;
}
const info = { remoteAddr: { hostname: "127.0.0.1" }, completed: Promise.resolve() };
async function run(label: string, app: Hono<AppEnv>) {
  const N = 100_000;
  for (let i = 0; i < 10_000; i++) await app.fetch(new Request("http://127.0.0.1/v2/bench/small/manifests/v1"), info);
  const t = performance.now();
  for (let i = 0; i < N; i++) await app.fetch(new Request("http://127.0.0.1/v2/bench/small/manifests/v1"), { ...info, completed: Promise.resolve() });
  console.log(label, ((performance.now() - t) * 1000 / N).toFixed(2), "us/req");
}
const file = Deno.openSync("/dev/null", { write: true });
const enc = new TextEncoder();
for (let round = 0; round < 2; round++) {
  await run("bare", build());
  await run("metrics", build({ metrics: createMetrics() }));
  await run("metrics+log(noop write)", build({ metrics: createMetrics(), accessLog: createLogger({ write: () => {} }) }));
  await run("metrics+log(writeSync)", build({ metrics: createMetrics(), accessLog: createLogger({ write: (l) => file.writeSync(enc.encode(l + "\n")) }) }));
}
