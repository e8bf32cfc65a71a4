/**
 * A small fault-injecting HTTP proxy for mirroring tests: it forwards to a real upstream and,
 * for requests matching a rule, answers 500 or 429 (with `Retry-After`), cuts the body short,
 * alters a byte (a wrong digest), stalls mid-body, trickles the body slowly, or redirects blob
 * downloads to the upstream itself (another origin, as registries redirect to object storage).
 * @module
 */

/** What a rule does to a matching request. */
export type FaultKind = "500" | "429" | "truncate" | "corrupt" | "stall" | "slow" | "redirect";

/** A rule: requests whose path matches `path` (and method, default GET) get `kind`, `times` times. */
export interface Fault {
  kind: FaultKind;
  path: RegExp;
  method?: string;
  /** How many requests it hits (default 1; Infinity for always). */
  times?: number;
  /** Stall/slow: milliseconds of silence, or between chunks. */
  delayMs?: number;
}

/** A running proxy. */
export interface FaultProxy {
  url: string;
  host: string;
  faults: Fault[];
  /** How often each kind fired. */
  hits: Record<string, number>;
  close(): Promise<void>;
}

/** Starts the proxy on an ephemeral loopback port in front of `upstream` (a base URL). */
export function startFaultProxy(upstream: string): FaultProxy {
  const faults: Fault[] = [];
  const hits: Record<string, number> = {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const fault = faults.find((f) =>
      (f.times ?? 1) > 0 && (f.method ?? "GET") === req.method && f.path.test(url.pathname)
    );
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      hits[fault.kind] = (hits[fault.kind] ?? 0) + 1;
    }
    const target = `${upstream}${url.pathname}${url.search}`;
    if (fault?.kind === "500") {
      await req.body?.cancel();
      return new Response("upstream exploded", { status: 500 });
    }
    if (fault?.kind === "429") {
      await req.body?.cancel();
      return new Response(
        JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] }),
        { status: 429, headers: { "retry-after": "1", "content-type": "application/json" } },
      );
    }
    if (fault?.kind === "redirect") return Response.redirect(target, 307);
    const headers = new Headers(req.headers);
    headers.delete("host");
    const response = await fetch(target, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
    });
    if (!fault || !response.body || req.method === "HEAD") return response;
    const bytes = new Uint8Array(await response.arrayBuffer());
    const out = new Headers(response.headers);
    out.set("content-length", String(bytes.length));
    const delay = fault.delayMs ?? 1000;
    let body: ReadableStream<Uint8Array>;
    if (fault.kind === "corrupt") {
      const altered = bytes.slice();
      altered[Math.floor(altered.length / 2)] ^= 0xff;
      body = new Blob([altered]).stream();
    } else if (fault.kind === "truncate") {
      body = new ReadableStream({
        start(controller) {
          controller.enqueue(bytes.subarray(0, Math.floor(bytes.length / 2)));
          controller.error(new Error("connection cut"));
        },
      });
    } else {
      const chunk = fault.kind === "slow" ? 1024 : Math.ceil(bytes.length / 2);
      let offset = 0;
      // A client that gives up (a stall it timed out) cancels the wait: no timer outlives it.
      let wait: { timer: ReturnType<typeof setTimeout>; resume: () => void } | undefined;
      body = new ReadableStream({
        async pull(controller) {
          if (offset > 0) {
            await new Promise<void>((resume) => {
              wait = { timer: setTimeout(resume, delay), resume };
            });
            if (!wait) return;
            wait = undefined;
          }
          controller.enqueue(bytes.slice(offset, offset + chunk));
          offset += chunk;
          if (offset >= bytes.length) controller.close();
        },
        cancel() {
          if (!wait) return;
          clearTimeout(wait.timer);
          const { resume } = wait;
          wait = undefined;
          resume();
        },
      });
    }
    return new Response(body, { status: response.status, headers: out });
  });
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    faults,
    hits,
    close: () => server.shutdown(),
  };
}
