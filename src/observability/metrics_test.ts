import { assertMatch, assertOk } from "../../tests/assert.ts";
import { createMetrics } from "./metrics.ts";

const ROUTE = "/v2/:name{.+}/blobs/:digest";

Deno.test("requests are counted by route pattern and status, with latency and bytes", async () => {
  const metrics = createMetrics();
  metrics.requestStarted();
  metrics.request({
    method: "GET",
    route: ROUTE,
    status: 200,
    seconds: 0.003,
    bytesIn: 0,
    bytesOut: 1234,
    complete: true,
  });
  metrics.requestStarted();
  metrics.request({
    method: "GET",
    route: ROUTE,
    status: 200,
    seconds: 0.5,
    bytesIn: 0,
    bytesOut: 0,
    complete: false,
  });
  const text = await metrics.render();
  assertMatch(
    text,
    /^wharf_http_requests_total\{method="GET",route="\/v2\/:name\{\.\+\}\/blobs\/:digest",status="200"\} 2$/m,
  );
  assertMatch(text, /^wharf_http_request_duration_seconds_bucket\{le="0\.005",.*\} 1$/m);
  assertMatch(text, /^wharf_http_request_duration_seconds_count\{.*\} 2$/m);
  assertMatch(text, /^wharf_http_response_body_bytes_total\{.*\} 1234$/m);
  assertMatch(text, /^wharf_http_responses_incomplete_total\{.*\} 1$/m);
  assertMatch(text, /^wharf_http_requests_in_flight 0$/m);
  assertOk(metrics.contentType.startsWith("text/plain; version=0.0.4"));
});

Deno.test("sync and GC runs are counted; GC counters exist before the first run", async () => {
  const metrics = createMetrics();
  assertMatch(await metrics.render(), /^wharf_gc_runs_total\{outcome="success"\} 0$/m);
  metrics.syncRun("hub", "success");
  metrics.syncRun("hub", "failure");
  metrics.gcRun("success", { bytes: 4096, blobs: 2 });
  const text = await metrics.render();
  assertMatch(text, /^wharf_sync_runs_total\{mirror="hub",outcome="success"\} 1$/m);
  assertMatch(text, /^wharf_sync_runs_total\{mirror="hub",outcome="failure"\} 1$/m);
  assertMatch(text, /^wharf_sync_last_success_timestamp_seconds\{mirror="hub"\} \d+/m);
  assertMatch(text, /^wharf_gc_runs_total\{outcome="success"\} 1$/m);
  assertMatch(text, /^wharf_gc_freed_bytes_total 4096$/m);
  assertMatch(text, /^wharf_gc_freed_blobs_total 2$/m);
});

Deno.test("process metrics are included on request", async () => {
  const text = await createMetrics({ processMetrics: true }).render();
  assertMatch(text, /^process_resident_memory_bytes \d+/m);
});
