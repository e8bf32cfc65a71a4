/**
 * Operations against a real server: `/metrics`, `/healthz`, `/readyz`, the access log, and
 * graceful shutdown (SIGTERM drains an in-flight upload, then the process exits 0).
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { startRegistry, type TestRegistry } from "./harness.ts";
import { pushBlob, pushImage, randomBytes, sha256 } from "./oci_client.ts";

const BLOB_ROUTE = String.raw`/v2/:name{\.\+}/blobs/:digest`;

async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.text() };
}

/** Access log lines of the process, once one has `requestId` (lines are flushed in batches). */
async function accessLines(registry: TestRegistry, requestId: string) {
  for (let i = 0; i < 100; i++) {
    const lines = registry.logs().split("\n").filter((l) => l.includes(`"msg":"request"`));
    if (lines.some((l) => l.includes(`"requestId":"${requestId}"`))) {
      return lines.map((l) => JSON.parse(l));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no access line for ${requestId}:\n${registry.logs()}`);
}

/** A sample of the exposition, or 0 when the series is absent. */
function sample(exposition: string, name: string, labels: string): number {
  const line = exposition.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

Deno.test("operations endpoints and the access log", async (t) => {
  const registry = await startRegistry();
  const base = registry.url;
  try {
    await t.step("/healthz answers while the process is up", async () => {
      assertEquals(await text(`${base}/healthz`), { status: 200, body: `{"status":"ok"}` });
    });

    await t.step("/readyz names a failing dependency and its driver, and recovers", async () => {
      const ready = await text(`${base}/readyz`);
      assertEquals(ready.status, 200);
      const body = JSON.parse(ready.body);
      assertEquals(body.status, "ready");
      assertEquals(body.checks.metadata.driver, "sqlite");
      assertEquals(body.checks.metadata.ok, true);
      assertEquals(body.checks.storage.driver, "filesystem");
      assertEquals(body.checks.storage.ok, true);

      // The blob store cannot write once its uploads directory is a plain file.
      const uploads = join(registry.dataDir, "uploads");
      await Deno.rename(uploads, `${uploads}.away`);
      await Deno.writeTextFile(uploads, "");
      try {
        const failing = await text(`${base}/readyz`);
        assertEquals(failing.status, 503);
        const checks = JSON.parse(failing.body).checks;
        assertEquals(JSON.parse(failing.body).status, "unavailable");
        assertEquals(checks.storage.ok, false);
        assertMatch(checks.storage.error, /directory/i);
        assertEquals(checks.metadata.ok, true);
        await text(`${base}/readyz`); // a second failing probe is not logged again
      } finally {
        await Deno.remove(uploads);
        await Deno.rename(`${uploads}.away`, uploads);
      }
      assertEquals((await text(`${base}/readyz`)).status, 200);
      // Info lines are written in batches: wait for the recovery line.
      const flipLines = () =>
        registry.logs().split("\n").filter((l) => /"msg":"(not )?ready/.test(l));
      for (let i = 0; i < 100 && flipLines().length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const flips = flipLines();
      assertEquals(flips.length, 2, flips.join("\n"));
      assertMatch(flips[0], /not ready: storage \(filesystem\) failing/);
    });

    await t.step(
      "/metrics counts requests by route pattern, with blob bytes in and out",
      async () => {
        const before = (await text(`${base}/metrics`)).body;
        const layer = randomBytes(300_000);
        const digest = await pushBlob(base, "ops/app", layer);
        const pulled = await fetch(`${base}/v2/ops/app/blobs/${digest}`);
        assertEquals((await pulled.bytes()).length, layer.length);
        const missing = await fetch(`${base}/v2/ops/app/blobs/${sha256("nope")}`);
        await missing.body?.cancel();

        const metrics = await fetch(`${base}/metrics`);
        assertMatch(metrics.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
        const after = await metrics.text();
        const delta = (name: string, labels: string) =>
          sample(after, name, labels) - sample(before, name, labels);
        const blobGet = `method="GET",route="${BLOB_ROUTE.replaceAll("\\", "")}"`;
        assertEquals(delta("wharf_http_requests_total", `${blobGet},status="200"`), 1);
        assertEquals(delta("wharf_http_requests_total", `${blobGet},status="404"`), 1);
        assertEquals(delta("wharf_http_response_body_bytes_total", blobGet), layer.length);
        assertEquals(
          delta(
            "wharf_http_request_body_bytes_total",
            `method="PUT",route="/v2/:name{.+}/blobs/uploads/:id"`,
          ),
          layer.length,
        );
        assertEquals(delta("wharf_http_request_duration_seconds_count", blobGet), 2);
        assertOk(!after.includes("ops/app"), "raw paths never become labels");
        assertMatch(after, /^wharf_gc_runs_total\{outcome="success"\} \d+$/m);
        assertMatch(after, /^process_resident_memory_bytes \d+/m);
      },
    );

    await t.step("one access line per request, with its id and no secrets", async () => {
      await pushImage(base, "ops/logged", "v1");
      const res = await fetch(`${base}/v2/ops/logged/tags/list?n=5&token=s3cr3t-token`, {
        headers: { "Authorization": "Bearer s3cr3t-bearer", "X-Request-Id": "trace-42" },
      });
      await res.body?.cancel();
      assertEquals(res.headers.get("x-request-id"), "trace-42");
      const lines = await accessLines(registry, "trace-42");
      const line = lines.find((l) => l.requestId === "trace-42");
      assertOk(line, "the request's line is logged with its id");
      assertEquals(line.method, "GET");
      assertEquals(line.route, "/v2/:name{.+}/tags/list");
      assertEquals(line.path, "/v2/ops/logged/tags/list?n=5&token=REDACTED");
      assertEquals(line.remote, "127.0.0.1");
      assertOk(typeof line.status === "number" && typeof line.durationMs === "number");
      for (const l of lines) {
        for (const key of ["requestId", "method", "route", "path", "status", "durationMs"]) {
          assertOk(key in l, `${key} in ${JSON.stringify(l)}`);
        }
      }
      assertOk(!/s3cr3t|authorization/i.test(registry.logs()), "no credentials in the logs");
    });
  } finally {
    await registry.close();
  }
});

Deno.test("/metrics is closed to non-loopback callers unless metrics.public", async () => {
  // The listener is on loopback in tests; the rule itself is covered in-process in
  // src/observability/routes_test.ts. Here: the config key is accepted and loopback works.
  const registry = await startRegistry({
    config: { metrics: { public: true }, log: { access: false } },
  });
  try {
    assertEquals((await text(`${registry.url}/metrics`)).status, 200);
    await (await fetch(`${registry.url}/v2/`)).body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertOk(!registry.logs().includes(`"msg":"request"`), "log.access: false writes no lines");
  } finally {
    await registry.close();
  }
});

Deno.test("SIGTERM drains an in-flight upload, refuses new work, then exits 0", async () => {
  const registry = await startRegistry();
  const port = Number(new URL(registry.url).port);
  const chunk = randomBytes(64 * 1024);
  const chunks = 40;
  const content = new Uint8Array(chunk.length * chunks);
  for (let i = 0; i < chunks; i++) content.set(chunk, i * chunk.length);

  let sent = 0;
  let firstSent: () => void;
  const started = new Promise<void>((resolve) => firstSent = resolve);
  // Sends one chunk every 50 ms: about 2 s in flight.
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === chunks) return controller.close();
      if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      controller.enqueue(chunk.slice());
      if (++sent === 1) firstSent();
    },
  });
  const client = Deno.createHttpClient({});
  const upload = fetch(`${registry.url}/v2/drain/app/blobs/uploads/?digest=${sha256(content)}`, {
    method: "POST",
    body,
    client,
  });
  await started;
  await new Promise((resolve) => setTimeout(resolve, 100));
  registry.process.kill("SIGTERM");
  await new Promise((resolve) => setTimeout(resolve, 100));

  // While the upload drains, a new upload is refused with an OCI error instead of started.
  const late = await fetch(`${registry.url}/v2/drain/late/blobs/uploads/?digest=${sha256("x")}`, {
    method: "POST",
    body: "x",
  });
  assertEquals(late.status, 503);
  assertEquals((await late.json()).errors[0].code, "UNAVAILABLE");
  assertOk(sent < chunks, "the refusal came while the first upload was in flight");

  const response = await upload;
  const answer = await response.text();
  assertEquals(response.status, 201, `${answer}\n${registry.logs()}`);
  client.close();
  const status = await registry.process.status;
  assertEquals(status.code, 0);
  assertMatch(registry.logs(), /"msg":"stopped"/);
  let refused = false;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
  } catch (err) {
    refused = err instanceof Deno.errors.ConnectionRefused;
  }
  assertOk(refused, "no connections after shutdown");
  await registry.close();
});
