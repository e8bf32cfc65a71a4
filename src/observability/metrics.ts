/**
 * Wharf's Prometheus metrics: HTTP requests, latency and bytes, and the counters the sync
 * engine and the garbage collector feed. One {@link Metrics} object per process
 * ({@link metrics}); other modules import it and call its small typed methods rather than
 * prom-client directly, so the library stays an implementation detail of this file.
 *
 * @example
 * ```ts
 * import { metrics } from "../observability/metrics.ts";
 * metrics.syncRun("docker-hub", "success");
 * metrics.gcRun("success", { freedBytes: 1_048_576 });
 * ```
 * @module
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** How a sync run ended. */
export type SyncOutcome = "success" | "partial" | "failure";

/** How a GC run ended. */
export type GcOutcome = "success" | "failure";

/** One finished HTTP request, as the HTTP middleware reports it. */
export interface RequestSample {
  method: string;
  /** The matched route pattern (`/v2/:name{.+}/blobs/:digest`), never the raw path. */
  route: string;
  status: number;
  seconds: number;
  /** Request body bytes read by the handler. */
  bytesIn: number;
  /** Response body bytes delivered; 0 when the response was not completely sent. */
  bytesOut: number;
  /** False when the client went away before the whole response was sent. */
  complete: boolean;
}

/** Latency buckets in seconds: manifest hits take about a millisecond, blob pushes minutes. */
export const LATENCY_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** The metrics of one Wharf process. */
export interface Metrics {
  /** Records a finished HTTP request. */
  request(sample: RequestSample): void;
  /** Counts a request that started (the in-flight gauge); pair with {@link Metrics.request}. */
  requestStarted(): void;
  /** Records a finished sync run of `mirror`. */
  syncRun(mirror: string, outcome: SyncOutcome): void;
  /** Records a finished garbage collection (not dry runs) and what it freed. */
  gcRun(outcome: GcOutcome, freed?: { bytes?: number; blobs?: number }): void;
  /** The text exposition (format 0.0.4). */
  render(): Promise<string>;
  /** The `Content-Type` of {@link Metrics.render}'s output. */
  readonly contentType: string;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Also export prom-client's `process_*` and `nodejs_*` metrics (RSS, CPU, heap, fds). */
  processMetrics?: boolean;
}

/** Creates a metrics set with its own registry (tests make their own; the server uses one). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const http = ["method", "route"] as const;

  const requests = new Counter({
    name: "wharf_http_requests_total",
    help: "HTTP requests by method, matched route pattern and status.",
    labelNames: [...http, "status"],
    registers,
  });
  const duration = new Histogram({
    name: "wharf_http_request_duration_seconds",
    help: "Time from receiving a request to the last byte of its response.",
    labelNames: http,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const bytesIn = new Counter({
    name: "wharf_http_request_body_bytes_total",
    help: "Request body bytes read, by route.",
    labelNames: http,
    registers,
  });
  const bytesOut = new Counter({
    name: "wharf_http_response_body_bytes_total",
    help: "Response body bytes completely delivered, by route.",
    labelNames: http,
    registers,
  });
  const incomplete = new Counter({
    name: "wharf_http_responses_incomplete_total",
    help: "Responses the client went away from before their last byte.",
    labelNames: http,
    registers,
  });
  const inFlight = new Gauge({
    name: "wharf_http_requests_in_flight",
    help: "Requests received and not yet answered completely.",
    registers,
  });
  const syncRuns = new Counter({
    name: "wharf_sync_runs_total",
    help: "Mirror sync runs by mirror and outcome.",
    labelNames: ["mirror", "outcome"],
    registers,
  });
  const syncLastSuccess = new Gauge({
    name: "wharf_sync_last_success_timestamp_seconds",
    help: "Unix time of the last successful sync run of each mirror.",
    labelNames: ["mirror"],
    registers,
  });
  const gcRuns = new Counter({
    name: "wharf_gc_runs_total",
    help: "Garbage collection runs (not dry runs) by outcome.",
    labelNames: ["outcome"],
    registers,
  });
  const gcFreedBytes = new Counter({
    name: "wharf_gc_freed_bytes_total",
    help: "Blob bytes freed by garbage collection.",
    registers,
  });
  const gcFreedBlobs = new Counter({
    name: "wharf_gc_freed_blobs_total",
    help: "Blobs deleted by garbage collection.",
    registers,
  });
  const gcLastRun = new Gauge({
    name: "wharf_gc_last_run_timestamp_seconds",
    help: "Unix time of the last garbage collection run.",
    registers,
  });
  // Before any run the counters read 0, not absent, so rate() and alerts work from the start.
  for (const outcome of ["success", "failure"]) gcRuns.inc({ outcome }, 0);
  gcFreedBytes.inc(0);
  gcFreedBlobs.inc(0);

  return {
    contentType: registry.contentType,
    request(sample) {
      const labels = { method: sample.method, route: sample.route };
      requests.inc({ ...labels, status: sample.status });
      duration.observe(labels, sample.seconds);
      if (sample.bytesIn > 0) bytesIn.inc(labels, sample.bytesIn);
      if (sample.bytesOut > 0) bytesOut.inc(labels, sample.bytesOut);
      if (!sample.complete) incomplete.inc(labels);
      inFlight.dec();
    },
    requestStarted() {
      inFlight.inc();
    },
    syncRun(mirror, outcome) {
      syncRuns.inc({ mirror, outcome });
      if (outcome === "success") syncLastSuccess.set({ mirror }, Date.now() / 1000);
    },
    gcRun(outcome, freed = {}) {
      gcRuns.inc({ outcome });
      if (freed.bytes) gcFreedBytes.inc(freed.bytes);
      if (freed.blobs) gcFreedBlobs.inc(freed.blobs);
      gcLastRun.set(Date.now() / 1000);
    },
    render: () => registry.metrics(),
  };
}

/**
 * The process's metrics, served at `/metrics` by `wharf serve`. Import it to count sync and
 * GC runs; process metrics (RSS, CPU, heap) are included.
 */
export const metrics: Metrics = createMetrics({ processMetrics: true });
