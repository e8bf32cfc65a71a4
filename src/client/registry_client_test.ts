import { assertEquals, assertMatch, assertOk, assertRejects } from "../../tests/assert.ts";
import { digestOf } from "../oci/digest.ts";
import { parseChallenge } from "./auth.ts";
import {
  RegistryClient,
  RegistryClientError,
  type RegistryClientOptions,
  retryAfter,
} from "./registry_client.ts";

type Handler = (request: Request) => Response | Promise<Response>;

function client(handler: Handler, options: Partial<RegistryClientOptions> = {}) {
  const calls: string[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    calls.push(`${request.method} ${new URL(request.url).pathname}${new URL(request.url).search}`);
    return await handler(request);
  }) as typeof fetch;
  return {
    calls,
    client: new RegistryClient({
      registry: "127.0.0.1:5000",
      fetch: fetchFn,
      retryDelayMs: 1,
      ...options,
    }),
  };
}

const MANIFEST = new TextEncoder().encode('{"schemaVersion":2}');
const DIGEST = digestOf(MANIFEST);

Deno.test("client: challenge parsing and Retry-After", () => {
  assertEquals(
    parseChallenge('Bearer realm="https://r/token",service="r,s",scope="repository:a:pull"'),
    {
      scheme: "bearer",
      params: { realm: "https://r/token", service: "r,s", scope: "repository:a:pull" },
    },
  );
  assertEquals(parseChallenge('Basic realm="wharf"'), {
    scheme: "basic",
    params: { realm: "wharf" },
  });
  assertEquals(retryAfter("3"), 3000);
  assertEquals(retryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assertEquals(retryAfter(null), undefined);
});

Deno.test("client: retries 503/429 then succeeds; verifies manifest digests", async () => {
  let n = 0;
  const { client: c, calls } = client(() => {
    n++;
    if (n === 1) return new Response("", { status: 503 });
    if (n === 2) return new Response("", { status: 429, headers: { "retry-after": "0" } });
    return new Response(MANIFEST, {
      headers: {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "docker-content-digest": DIGEST,
      },
    });
  });
  const manifest = await c.getManifest("team/app", "v1");
  assertEquals(manifest?.digest, DIGEST);
  assertEquals(calls.length, 3);

  const { client: liar } = client(() =>
    new Response(MANIFEST, { headers: { "docker-content-digest": `sha256:${"0".repeat(64)}` } })
  );
  const err = await assertRejects(() => liar.getManifest("team/app", "v1"), RegistryClientError);
  assertMatch(err.message, /expected sha256:0000/);
  const { client: blobLiar } = client(() => new Response("other bytes"));
  await assertRejects(() => blobLiar.getBlob("team/app", DIGEST), RegistryClientError);
});

Deno.test("client: Docker token flow with Basic credentials at the realm", async () => {
  const tokenRequests: string[] = [];
  const { client: c } = client((request) => {
    const url = new URL(request.url);
    if (url.pathname === "/token") {
      tokenRequests.push(
        `${url.searchParams.getAll("scope")} ${request.headers.get("authorization")}`,
      );
      return Response.json({ token: "T1", expires_in: 300 });
    }
    if (request.headers.get("authorization") !== "Bearer T1") {
      return new Response("", {
        status: 401,
        headers: {
          "www-authenticate":
            'Bearer realm="http://127.0.0.1:5000/token",service="wharf",scope="repository:team/app:pull"',
        },
      });
    }
    return new Response(null, { status: 200, headers: { "docker-content-digest": DIGEST } });
  }, { credentials: { username: "alice", password: "pw" } });
  assertOk(await c.hasBlob("team/app", DIGEST));
  assertOk(await c.hasBlob("team/app", DIGEST)); // cached token, no new token request
  assertEquals(tokenRequests, [`repository:team/app:pull Basic ${btoa("alice:pw")}`]);
});

Deno.test("client: referrers fall back to the sha256-<hex> tag index and filter", async () => {
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: "m", digest: DIGEST, size: 1, artifactType: "a/sig" },
      { mediaType: "m", digest: DIGEST, size: 1, artifactType: "a/att" },
    ],
  };
  const { client: c, calls } = client((request) => {
    const path = new URL(request.url).pathname;
    if (path.includes("/referrers/")) return new Response("", { status: 404 });
    if (path.endsWith(`/manifests/${DIGEST.replace(":", "-")}`)) {
      return new Response(JSON.stringify(index), {
        headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
      });
    }
    return new Response("", { status: 404 });
  });
  const found = await c.referrers("team/app", DIGEST, "a/sig");
  assertEquals(found.map((d) => d.artifactType), ["a/sig"]);
  assertEquals(calls[1], `GET /v2/team/app/manifests/${DIGEST.replace(":", "-")}`);
});

/** A body sending `bytes` in two halves, `pauseMs` apart; the pause ends if the reader cancels. */
function pausingBody(bytes: Uint8Array, pauseMs: number): ReadableStream<Uint8Array> {
  const half = bytes.length / 2;
  let sent = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resume = () => {};
  return new ReadableStream({
    async pull(controller) {
      if (sent > 0) {
        await new Promise<void>((r) => (resume = r, timer = setTimeout(r, pauseMs)));
        timer = undefined;
      }
      controller.enqueue(bytes.slice(sent, sent + half));
      sent += half;
      if (sent >= bytes.length) controller.close();
    },
    cancel() {
      clearTimeout(timer);
      resume();
    },
  });
}

Deno.test("client: a body silent for longer than timeoutMs fails with 504; a slow reader does not", async () => {
  const bytes = new TextEncoder().encode("0123456789abcdef".repeat(64));
  const digest = digestOf(bytes);
  // A fetch of our own: the stall must be cut by the client itself, not by the fetch's signal
  // (which Deno stops passing on to the body once the fetch's objects are garbage-collected).
  const { client: stalling } = client(() => new Response(pausingBody(bytes, 5_000)), {
    timeoutMs: 100,
  });
  const started = Date.now();
  const stream = await stalling.openBlob("team/app", digest);
  const err = await assertRejects(() => new Response(stream).arrayBuffer(), RegistryClientError);
  assertEquals(err.status, 504);
  assertMatch(err.message, /stalled for more than 100 ms/);
  assertOk(Date.now() - started < 2_000, `cut after ${Date.now() - started} ms`);

  // Only the upstream's silence counts: a reader pausing longer than timeoutMs is fine.
  const { client: moving } = client(() => new Response(pausingBody(bytes, 20)), {
    timeoutMs: 100,
  });
  const reader = (await moving.openBlob("team/app", digest)).getReader();
  const got = new Uint8Array(bytes.length);
  let length = 0;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    got.set(next.value, length);
    length += next.value.length;
    await new Promise((r) => setTimeout(r, 250));
  }
  assertEquals([length, digestOf(got)], [bytes.length, digest]);
});
