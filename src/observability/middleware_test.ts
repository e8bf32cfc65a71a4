import { Hono } from "hono";
import { assertEquals, assertMatch, assertOk } from "../../tests/assert.ts";
import { createLogger } from "../log/logger.ts";
import type { AppEnv } from "../http/context.ts";
import { createMetrics } from "./metrics.ts";
import { loggedPath, observe, UNMATCHED } from "./middleware.ts";

function testApp() {
  const lines: Record<string, unknown>[] = [];
  const metrics = createMetrics();
  const accessLog = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  const app = new Hono<AppEnv>();
  app.use(observe({ metrics, accessLog, log: accessLog }));
  app.use(async (c, next) => {
    if (c.req.header("authorization") === "Bearer wrong") return c.text("no", 401);
    await next();
  });
  app.get(
    "/v2/:name{.+}/blobs/:digest",
    () => new Response("hello", { headers: { "Content-Length": "5" } }),
  );
  app.put("/v2/:name{.+}/blobs/uploads/:id", async (c) => {
    const bytes = await c.req.arrayBuffer();
    return c.text(String(bytes.byteLength), 201);
  });
  return { app, lines, metrics };
}

Deno.test("access lines carry the route pattern, status, bytes and request id, no secrets", async () => {
  const { app, lines } = testApp();
  const put = await app.request("/v2/a/b/blobs/uploads/u1?digest=sha256:ab&_state=s3cr3t", {
    method: "PUT",
    body: new Uint8Array(1000),
    headers: {
      "Authorization": "Basic dXNlcjpwYXNzd29yZA==",
      "X-Request-Id": "abc-123",
      "Content-Length": "1000",
    },
  });
  assertEquals(await put.text(), "1000");
  assertEquals(put.headers.get("x-request-id"), "abc-123");
  const line = lines[0];
  assertEquals(line.msg, "request");
  assertEquals(line.requestId, "abc-123");
  assertEquals(line.route, "/v2/:name{.+}/blobs/uploads/:id");
  assertEquals(line.path, "/v2/a/b/blobs/uploads/u1?digest=sha256:ab&_state=REDACTED");
  assertEquals([line.status, line.bytesIn, line.user], [201, 1000, null]);
  assertOk(typeof line.durationMs === "number");
  const text = JSON.stringify(lines);
  assertOk(!/s3cr3t|dXNlcjpwYXNzd29yZA|authorization/i.test(text), text);
});

Deno.test("a request id that is not a plain token is replaced", async () => {
  const { app, lines } = testApp();
  const res = await app.request("/v2/a/blobs/sha256:00", {
    headers: { "X-Request-Id": "x".repeat(200) },
  });
  await res.body?.cancel();
  assertMatch(String(lines[0].requestId), /^[0-9a-f-]{36}$/);
  assertEquals(res.headers.get("x-request-id"), lines[0].requestId);
});

Deno.test("metrics use route patterns, also for refused and unmatched requests", async () => {
  const { app, metrics } = testApp();
  await (await app.request("/v2/a/blobs/sha256:00")).text();
  await (await app.request("/v2/a/blobs/sha256:00", { headers: { authorization: "Bearer wrong" } }))
    .text();
  await (await app.request("/no/such/path")).text();
  const text = await metrics.render();
  assertMatch(
    text,
    /wharf_http_requests_total\{method="GET",route="\/v2\/:name\{\.\+\}\/blobs\/:digest",status="200"\} 1/,
  );
  assertMatch(
    text,
    /wharf_http_requests_total\{method="GET",route="\/v2\/:name\{\.\+\}\/blobs\/:digest",status="401"\} 1/,
  );
  assertMatch(
    text,
    new RegExp(`wharf_http_requests_total\\{method="GET",route="${UNMATCHED}",status="404"\\} 1`),
  );
  assertMatch(text, /wharf_http_response_body_bytes_total\{method="GET",route="[^"]+"\} 5$/m);
  assertOk(!text.includes("/v2/a/blobs/sha256:00"), "raw paths never become labels");
});

Deno.test("loggedPath keeps known parameters and redacts the rest", () => {
  assertEquals(loggedPath("http://h/v2/", "/v2/"), "/v2/");
  assertEquals(
    loggedPath(
      "http://h/token?scope=repository:a:pull&service=wharf&token=t&X-Amz-Signature=s",
      "/token",
    ),
    "/token?scope=repository:a:pull&service=wharf&token=REDACTED&X-Amz-Signature=REDACTED",
  );
  assertEquals(loggedPath("http://h/p?flag", "/p"), "/p?flag=REDACTED");
});
