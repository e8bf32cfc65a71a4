/**
 * Pull-through: a Wharf whose mirror has `pullThrough: true` answers a pull it does not have
 * from the upstream — the manifest byte for byte, blobs streamed while stored, fetched once for
 * concurrent misses, a `Range` cut from the whole download — and then holds the image and its
 * signature locally. Tags it wrote follow the upstream after `tagTtl` (one check for concurrent
 * pulls, also across two processes on PostgreSQL; the stale copy when the upstream is down);
 * tags pushed locally are never checked, nor a tag pushed while pull-through was moving it.
 * `wharf sync reload` rebuilds the pull-through mirrors while a download under way finishes. The
 * upstream is a second Wharf behind a proxy that records every request.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals, assertOk } from "./assert.ts";
import { runWharf, startRegistry } from "./harness.ts";
import { sha256 } from "./oci_client.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";
import { startFaultProxy } from "./sync_fault_proxy.ts";
import { clientFor, makeKeys, pushTestImage, signImage } from "./sync_fixtures.ts";

Deno.test("pull-through: manifests and streamed blobs from the upstream, fetched once, then local", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-pt-" });
  const upstream = await startRegistry();
  const proxy = startFaultProxy(upstream.url);
  let mirror;
  try {
    const client = clientFor(upstream.host);
    const image = await pushTestImage(client, "library/app", "v1", {
      layers: 2,
      layerSize: 6_000_000,
    });
    const keys = await makeKeys(dir);
    await signImage(client, "library/app", image, keys.key, `${upstream.host}/library/app`);
    await pushTestImage(client, "other/app", "v1");
    const manifestBytes = new Uint8Array(
      await (await fetch(`${upstream.url}/v2/library/app/manifests/v1`)).arrayBuffer(),
    );
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    const big = manifest.layers[0].digest as string;

    mirror = await startRegistry({
      dataDir: join(dir, "mirror"),
      config: {
        mirrors: [{
          name: "hub",
          upstream: proxy.url,
          repositories: ["library/*"],
          destination: { prefix: "hub/" },
          pullThrough: true,
        }],
      },
    });
    const base = mirror.url;

    // Not covered by the mirror: an ordinary miss.
    const other = await fetch(`${base}/v2/hub/other/app/manifests/v1`);
    assertEquals(other.status, 404);
    await other.body?.cancel();

    const got = await fetch(`${base}/v2/hub/library/app/manifests/v1`);
    assertEquals(got.status, 200);
    assertEquals(got.headers.get("docker-content-digest"), image.digest);
    assertEquals(new Uint8Array(await got.arrayBuffer()), manifestBytes);

    // Three clients miss the big layer at once; the upstream serves it once, slowly.
    proxy.faults.push({
      kind: "slow",
      path: new RegExp(`/blobs/${big}$`),
      times: Infinity,
      delayMs: 2,
    });
    const head = await fetch(`${base}/v2/hub/library/app/blobs/${big}`, { method: "HEAD" });
    assertEquals(head.headers.get("content-length"), String(manifest.layers[0].size));
    await head.body?.cancel();
    const pulls = await Promise.all([0, 1, 2].map(async () => {
      const response = await fetch(`${base}/v2/hub/library/app/blobs/${big}`);
      assertEquals(response.status, 200);
      return sha256(new Uint8Array(await response.arrayBuffer()));
    }));
    assertEquals(pulls, [big, big, big]);
    assertEquals(proxy.hits.slow, 1, "concurrent misses fetch the blob once");

    // In the background the image, its other blobs and its signature were stored locally.
    const sigTag = `${image.digest.replace(":", "-")}.sig`;
    const deadline = Date.now() + 15_000;
    let stored = false;
    while (!stored && Date.now() < deadline) {
      const tags = await (await fetch(`${base}/v2/hub/library/app/tags/list`)).json().catch(
        () => ({}),
      );
      stored = Array.isArray(tags.tags) && tags.tags.includes("v1") && tags.tags.includes(sigTag);
      if (!stored) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assertOk(stored, "v1 and its signature are local after the pull");
    await upstream.close();
    await proxy.close();
    // With the upstream gone, everything is served from local storage.
    const local = await fetch(`${base}/v2/hub/library/app/manifests/v1`);
    assertEquals(new Uint8Array(await local.arrayBuffer()), manifestBytes);
    for (const layer of [manifest.config, ...manifest.layers]) {
      const blob = await fetch(`${base}/v2/hub/library/app/blobs/${layer.digest}`);
      assertEquals(sha256(new Uint8Array(await blob.arrayBuffer())), layer.digest);
    }
    const signature = await fetch(`${base}/v2/hub/library/app/manifests/${sigTag}`);
    assertEquals(signature.status, 200);
    await signature.body?.cancel();
  } finally {
    await mirror?.close({ keepData: true });
    await proxy.close().catch(() => {});
    await upstream.close().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/**
 * A plain forwarding proxy in front of the upstream that records every request
 * (`METHOD /path`), can hold manifest requests for a while, and can be stopped (connections
 * refused) and started again on the same port.
 */
function startRecordingProxy(upstream: string) {
  const requests: string[] = [];
  const options = { manifestDelayMs: 0 };
  const handler = async (req: Request) => {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}`);
    if (options.manifestDelayMs && url.pathname.includes("/manifests/")) {
      await new Promise((resolve) => setTimeout(resolve, options.manifestDelayMs));
    }
    const headers = new Headers(req.headers);
    headers.delete("host");
    return await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
    });
  };
  let server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const { port } = server.addr as Deno.NetAddr;
  let running = true;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    options,
    /** How many requests since `from` were `METHOD /path`. */
    count: (line: string, from = 0) => requests.slice(from).filter((r) => r === line).length,
    async stop() {
      if (running) await server.shutdown();
      running = false;
    },
    start() {
      server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
      running = true;
    },
  };
}

async function manifestDigest(url: string, method = "GET"): Promise<string | null> {
  const response = await fetch(url, { method, headers: { accept: MANIFEST_ACCEPT } });
  await response.body?.cancel();
  assertEquals(response.status, 200, `${method} ${url}`);
  return response.headers.get("docker-content-digest");
}

/** Points `tag` of the upstream repository at the manifest `digest` (a tag moving upstream). */
async function moveUpstreamTag(base: string, repository: string, tag: string, digest: string) {
  const got = await fetch(`${base}/v2/${repository}/manifests/${digest}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  const bytes = new Uint8Array(await got.arrayBuffer());
  const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": got.headers.get("content-type")! },
    body: bytes,
  });
  assertEquals(put.status, 201);
  await put.body?.cancel();
}

async function waitFor(what: string, probe: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A log line of the mirror saying pull-through pointed `tag` at `digest`. */
function tagStored(logs: string, tag: string, digest: string): boolean {
  return logs.split("\n").some((line) =>
    line.includes('"msg":"pull-through tag stored"') && line.includes(`"tag":"${tag}"`) &&
    line.includes(`"digest":"${digest}"`)
  );
}

function pullThroughMirror(upstream: string, tagTtl: string) {
  return {
    mirrors: [{
      name: "hub",
      upstream,
      repositories: ["library/*"],
      destination: { prefix: "hub/" },
      pullThrough: { tagTtl },
      retries: { attempts: 0 },
    }],
  };
}

Deno.test("pull-through tag TTL: a tag moved upstream is followed after the TTL and not before; a down upstream gets the stale copy served; concurrent pulls share one check", async () => {
  const TTL_MS = 3000;
  const upstream = await startRegistry();
  const proxy = startRecordingProxy(upstream.url);
  let mirror;
  try {
    const client = clientFor(upstream.host);
    const a = await pushTestImage(client, "library/app", "v1");
    const b = await pushTestImage(client, "library/app", "next", { layers: 2 });
    mirror = await startRegistry({ config: pullThroughMirror(proxy.url, `${TTL_MS}ms`) });
    const v1 = `${mirror.url}/v2/hub/library/app/manifests/v1`;
    const headV1 = "HEAD /v2/library/app/manifests/v1";

    assertEquals(await manifestDigest(v1), a.digest); // a miss, from the upstream
    await waitFor("v1 stored", () => tagStored(mirror!.logs(), "v1", a.digest));
    const storedAt = Date.now();

    // Moved upstream; within the TTL the local copy is served without asking.
    await moveUpstreamTag(upstream.url, "library/app", "v1", b.digest);
    const mark = proxy.requests.length;
    assertEquals(await manifestDigest(v1), a.digest);
    assertEquals(await manifestDigest(v1, "HEAD"), a.digest);
    assertOk(Date.now() - storedAt < TTL_MS, "the pulls above ran within the TTL");
    assertEquals(proxy.count(headV1, mark), 0, "no upstream check within the TTL");

    // Past the TTL with the upstream down: the stale copy, and a log line saying why.
    await sleep(storedAt + TTL_MS + 200 - Date.now());
    await proxy.stop();
    assertEquals(await manifestDigest(v1), a.digest);
    await waitFor(
      "the failed check logged",
      () => mirror!.logs().includes("pull-through upstream check failed, serving the local copy"),
    );
    const failedAt = Date.now();

    // The upstream is back and the (failed) check is a TTL old: eight pulls at once, one check.
    proxy.start();
    await sleep(failedAt + TTL_MS + 200 - Date.now());
    proxy.options.manifestDelayMs = 300;
    const before = proxy.requests.length;
    const digests = await Promise.all(
      Array.from({ length: 8 }, (_, i) => manifestDigest(v1, i % 2 ? "HEAD" : "GET")),
    );
    proxy.options.manifestDelayMs = 0;
    assertEquals(digests, Array(8).fill(b.digest));
    assertEquals(proxy.count(headV1, before), 1, "one upstream check for eight pulls");

    // The new image is stored in the background: served with the upstream gone.
    await waitFor("v1 moved locally", () => tagStored(mirror!.logs(), "v1", b.digest));
    await proxy.stop();
    const local = await fetch(v1, { headers: { accept: MANIFEST_ACCEPT } });
    const manifest = await local.json();
    assertEquals(local.headers.get("docker-content-digest"), b.digest);
    for (const layer of [manifest.config, ...manifest.layers]) {
      const blob = await fetch(`${mirror.url}/v2/hub/library/app/blobs/${layer.digest}`);
      assertEquals(sha256(new Uint8Array(await blob.arrayBuffer())), layer.digest);
    }
  } finally {
    await mirror?.close();
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("pull-through tag TTL: tags pushed locally are never checked upstream or overwritten", async () => {
  const upstream = await startRegistry();
  const proxy = startRecordingProxy(upstream.url);
  let mirror;
  try {
    const client = clientFor(upstream.host);
    const a = await pushTestImage(client, "library/app", "v1");
    const b = await pushTestImage(client, "library/app", "mine");
    mirror = await startRegistry({ config: pullThroughMirror(proxy.url, "500ms") });
    const local = clientFor(mirror.host);
    const base = `${mirror.url}/v2/hub/library/app/manifests`;

    // A tag pushed here that the upstream also has.
    const mine = await pushTestImage(local, "hub/library/app", "mine");
    // A tag pulled through, then pushed over here.
    assertEquals(await manifestDigest(`${base}/v1`), a.digest);
    await waitFor("v1 stored", () => tagStored(mirror!.logs(), "v1", a.digest));
    const over = await pushTestImage(local, "hub/library/app", "v1");
    await moveUpstreamTag(upstream.url, "library/app", "v1", b.digest);

    const mark = proxy.requests.length;
    for (let round = 0; round < 3; round++) {
      await sleep(700); // past the TTL each time
      assertEquals(await manifestDigest(`${base}/mine`), mine.digest);
      assertEquals(await manifestDigest(`${base}/v1`), over.digest);
    }
    await sleep(1500); // nothing in the background either
    assertEquals(await manifestDigest(`${base}/v1`), over.digest);
    assertEquals(
      proxy.requests.slice(mark).filter((r) => r.includes("/manifests/")),
      [],
      "no upstream check of a local tag",
    );
  } finally {
    await mirror?.close();
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("pull-through Range on a miss: 206 with the exact bytes, the whole blob stored; invalid ranges as for a stored blob", async () => {
  const upstream = await startRegistry();
  const proxy = startRecordingProxy(upstream.url);
  let mirror;
  try {
    const client = clientFor(upstream.host);
    const image = await pushTestImage(client, "library/app", "v1", {
      layers: 2,
      layerSize: 3_000_000,
    });
    const manifest = await (await fetch(`${upstream.url}/v2/library/app/manifests/v1`, {
      headers: { accept: MANIFEST_ACCEPT },
    })).json();
    assertEquals(manifest.layers.length, 2, String(image.digest));
    mirror = await startRegistry({ config: pullThroughMirror(proxy.url, "5m") });
    const [first, second] = manifest.layers as { digest: string; size: number }[];
    const bytes = new Uint8Array(
      await (await fetch(`${upstream.url}/v2/library/app/blobs/${first.digest}`)).arrayBuffer(),
    );
    const url = (digest: string) => `${mirror!.url}/v2/hub/library/app/blobs/${digest}`;
    const ranged = (digest: string, range: string, method = "GET") =>
      fetch(url(digest), { method, headers: { range } });

    // An unsatisfiable range on a miss: 416 without downloading anything.
    const invalid = await ranged(second.digest, `bytes=${second.size}-`);
    assertEquals(invalid.status, 416);
    assertEquals(invalid.headers.get("content-range"), `bytes */${second.size}`);
    await invalid.body?.cancel();
    assertEquals(proxy.count(`GET /v2/library/app/blobs/${second.digest}`), 0);
    // HEAD with a range on a miss answers as for a stored blob.
    const head = await ranged(first.digest, "bytes=10-19", "HEAD");
    assertEquals(head.status, 206);
    assertEquals(head.headers.get("content-range"), `bytes 10-19/${first.size}`);
    assertEquals(head.headers.get("content-length"), "10");

    const start = 1_000_000;
    const end = 1_999_999;
    const part = await ranged(first.digest, `bytes=${start}-${end}`);
    assertEquals(part.status, 206);
    assertEquals(part.headers.get("content-range"), `bytes ${start}-${end}/${first.size}`);
    assertEquals(part.headers.get("content-length"), String(end - start + 1));
    assertEquals(new Uint8Array(await part.arrayBuffer()), bytes.subarray(start, end + 1));
    // A suffix range on the other layer's miss.
    const secondBytes = new Uint8Array(
      await (await fetch(`${upstream.url}/v2/library/app/blobs/${second.digest}`)).arrayBuffer(),
    );
    const tail = await ranged(second.digest, "bytes=-100");
    assertEquals(tail.status, 206);
    assertEquals(
      tail.headers.get("content-range"),
      `bytes ${second.size - 100}-${second.size - 1}/${second.size}`,
    );
    assertEquals(new Uint8Array(await tail.arrayBuffer()), secondBytes.subarray(second.size - 100));

    // The whole blobs are stored meanwhile, each downloaded once: a pull of the whole blob waits
    // for a store still under way rather than downloading again, and with the upstream gone
    // the blobs are still served.
    for (const layer of [first, second]) {
      const whole = await fetch(url(layer.digest));
      assertEquals(whole.status, 200);
      assertEquals(sha256(new Uint8Array(await whole.arrayBuffer())), layer.digest);
      assertEquals(proxy.count(`GET /v2/library/app/blobs/${layer.digest}`), 1);
    }
    await proxy.stop();
    for (const layer of [first, second]) {
      const whole = await fetch(url(layer.digest));
      assertEquals(whole.status, 200);
      assertEquals(sha256(new Uint8Array(await whole.arrayBuffer())), layer.digest);
    }
    const stored = await ranged(second.digest, `bytes=${second.size}-`);
    assertEquals(stored.status, 416);
    assertEquals(stored.headers.get("content-range"), `bytes */${second.size}`);
    await stored.body?.cancel();
  } finally {
    await mirror?.close();
    await proxy.stop();
    await upstream.close();
  }
});

/** Re-points `tag` of a local repository at a manifest it holds (one PUT, as a push does). */
async function retag(base: string, repository: string, tag: string, digest: string) {
  await moveUpstreamTag(base, repository, tag, digest);
}

Deno.test("pull-through tag TTL: a tag pushed while the moved image is stored stays, and is no longer pull-through's", async () => {
  const TTL_MS = 500;
  const upstream = await startRegistry();
  const proxy = startRecordingProxy(upstream.url);
  let mirror;
  try {
    const client = clientFor(upstream.host);
    const a = await pushTestImage(client, "library/app", "v1");
    const b = await pushTestImage(client, "library/app", "next");
    mirror = await startRegistry({ config: pullThroughMirror(proxy.url, `${TTL_MS}ms`) });
    const local = clientFor(mirror.host);
    const v1 = `${mirror.url}/v2/hub/library/app/manifests/v1`;
    const mine = await pushTestImage(local, "hub/library/app", "mine");

    assertEquals(await manifestDigest(v1), a.digest);
    await waitFor("v1 stored", () => tagStored(mirror!.logs(), "v1", a.digest));
    await moveUpstreamTag(upstream.url, "library/app", "v1", b.digest);
    await sleep(TTL_MS + 200);
    // The check finds v1 moved upstream and serves b; b is tagged a second later, after its
    // blobs: a push of v1 lands first.
    assertEquals(await manifestDigest(v1), b.digest);
    await retag(mirror.url, "hub/library/app", "v1", mine.digest);
    await waitFor(
      "pull-through giving up the tag",
      () => mirror!.logs().includes('"msg":"pull-through left a tag moved meanwhile"'),
    );
    assertOk(!tagStored(mirror.logs(), "v1", b.digest), "pull-through did not move v1");
    assertEquals(await manifestDigest(v1), mine.digest);

    // Pushed back to where pull-through had it, the tag is still not pull-through's: never
    // checked upstream (where it is b), never moved.
    await retag(mirror.url, "hub/library/app", "v1", a.digest);
    const mark = proxy.requests.length;
    for (let round = 0; round < 3; round++) {
      await sleep(TTL_MS + 200);
      assertEquals(await manifestDigest(v1), a.digest);
    }
    assertEquals(proxy.count("HEAD /v2/library/app/manifests/v1", mark), 0, "no upstream check");
  } finally {
    await mirror?.close();
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("pull-through reload (wharf sync reload): pullThrough gained and lost, a new upstream and tagTtl take effect; a download under way finishes on the old upstream", async () => {
  const first = await startRegistry();
  const second = await startRegistry();
  const one = startRecordingProxy(first.url);
  const two = startRecordingProxy(second.url);
  let mirror;
  try {
    const a = await pushTestImage(clientFor(first.host), "library/app", "v1");
    await pushTestImage(clientFor(first.host), "library/other", "v1");
    const big = await pushTestImage(clientFor(first.host), "library/big", "v1", {
      layers: 1,
      layerSize: 16_000_000,
    });
    const b = await pushTestImage(clientFor(second.host), "library/app", "v1");
    const bigManifest = await (await fetch(`${first.url}/v2/library/big/manifests/v1`, {
      headers: { accept: MANIFEST_ACCEPT },
    })).json();
    const layer = bigManifest.layers[0].digest as string;
    const mirrorConfig = (
      name: string,
      upstream: string,
      pullThrough?: { tagTtl: string },
    ) => ({
      name,
      upstream,
      repositories: ["library/*"],
      destination: { prefix: `${name}/` },
      retries: { attempts: 0 },
      ...(pullThrough ? { pullThrough } : {}),
    });
    mirror = await startRegistry({
      config: {
        mirrors: [
          mirrorConfig("hub", one.url, { tagTtl: "1h" }),
          mirrorConfig("lab", one.url),
          mirrorConfig("old", one.url, { tagTtl: "1h" }),
        ],
      },
    });
    const url = (path: string) => `${mirror!.url}/v2/${path}`;
    const status = async (path: string) => {
      const response = await fetch(url(path), { headers: { accept: MANIFEST_ACCEPT } });
      await response.body?.cancel();
      return response.status;
    };

    assertEquals(await manifestDigest(url("hub/library/app/manifests/v1")), a.digest);
    await waitFor("v1 stored", () => tagStored(mirror!.logs(), "v1", a.digest));
    assertEquals(await status("lab/library/app/manifests/v1"), 404, "lab: no pull-through yet");
    assertEquals(await status("old/library/other/manifests/v1"), 200, "old: pull-through");

    // A big image pulled under way: its manifest served, the first chunk of its layer read and
    // the rest not yet, so its background store (blob, then tag) waits for the download.
    assertEquals(await manifestDigest(url("hub/library/big/manifests/v1")), big.digest);
    const download = await fetch(url(`hub/library/big/blobs/${layer}`));
    assertEquals(download.status, 200);
    const reader = download.body!.getReader();
    const chunks: Uint8Array[] = [(await reader.read()).value!];

    // hub moves to the second upstream with a short TTL, lab gains pull-through, old loses it.
    await Deno.writeTextFile(
      join(mirror.dataDir, "test-config.yaml"),
      stringify({
        mirrors: [
          mirrorConfig("hub", two.url, { tagTtl: "300ms" }),
          mirrorConfig("lab", one.url, { tagTtl: "1h" }),
          mirrorConfig("old", one.url),
        ],
      }),
    );
    const reload = await runWharf(["sync", "reload", "-d", mirror.dataDir]);
    assertEquals(reload.code, 0, reload.stderr);
    await waitFor(
      "the reload",
      () => mirror!.logs().includes('"msg":"pull-through mirrors reloaded"'),
    );
    const mark = { one: one.requests.length, two: two.requests.length };

    // The download started before finishes, from the first upstream, and is stored and tagged.
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      chunks.push(chunk.value);
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
    assertEquals(sha256(bytes), layer);
    await waitFor("the big blob stored", async () => {
      const head = await fetch(url(`hub/library/big/blobs/${layer}`), { method: "HEAD" });
      await head.body?.cancel();
      return head.status === 200;
    });
    assertEquals(one.count(`GET /v2/library/big/blobs/${layer}`), 1);
    assertEquals(two.count(`GET /v2/library/big/blobs/${layer}`), 0);
    await waitFor("big:v1 tagged", () => tagStored(mirror!.logs(), "v1", big.digest));
    assertEquals(await manifestDigest(url("hub/library/big/manifests/v1")), big.digest);

    assertEquals(await manifestDigest(url("lab/library/app/manifests/v1")), a.digest, "lab now");
    assertEquals(await status("old/library/app/manifests/v1"), 404, "old: pull-through off");
    assertEquals(one.count("GET /v2/library/app/manifests/v1", mark.one), 1, "only lab's miss");
    // hub's tag is now checked after 300ms, against the second upstream, where v1 is b.
    await sleep(400);
    assertEquals(await manifestDigest(url("hub/library/app/manifests/v1")), b.digest);
    assertEquals(two.count("HEAD /v2/library/app/manifests/v1", mark.two), 1);
    await waitFor("v1 moved", () => tagStored(mirror!.logs(), "v1", b.digest));
  } finally {
    await mirror?.close();
    await one.stop();
    await two.stop();
    await first.close();
    await second.close();
  }
});

const pgSkip = postgresUnavailableReason();
if (pgSkip) console.warn(`pull_through_test (PostgreSQL): skipped — ${pgSkip}`);

Deno.test({
  name: "pull-through tag TTL on PostgreSQL: two processes make one upstream check of a stale tag",
  ignore: pgSkip !== null,
  fn: async () => {
    const TTL_MS = 3000;
    const postgres = await startPostgres();
    const upstream = await startRegistry();
    const proxy = startRecordingProxy(upstream.url);
    const blobs = await Deno.makeTempDir({ prefix: "wharf-pt-blobs-" });
    const processes: Awaited<ReturnType<typeof startRegistry>>[] = [];
    try {
      const client = clientFor(upstream.host);
      const a = await pushTestImage(client, "library/app", "v1");
      const b = await pushTestImage(client, "library/app", "next");
      const config = {
        ...pullThroughMirror(proxy.url, `${TTL_MS}ms`),
        metadata: { driver: "postgres", url: postgres.url },
        storage: { driver: "filesystem", path: blobs },
      };
      processes.push(await startRegistry({ config }), await startRegistry({ config }));
      const v1 = (i: number) => `${processes[i].url}/v2/hub/library/app/manifests/v1`;
      const headV1 = "HEAD /v2/library/app/manifests/v1";

      assertEquals(await manifestDigest(v1(0)), a.digest);
      await waitFor("v1 stored", () => tagStored(processes[0].logs(), "v1", a.digest));
      const storedAt = Date.now();
      const mark = proxy.requests.length;
      assertEquals(await manifestDigest(v1(1)), a.digest, "the other process has it too");
      assertEquals(proxy.count(headV1, mark), 0);

      await moveUpstreamTag(upstream.url, "library/app", "v1", b.digest);
      await sleep(storedAt + TTL_MS + 200 - Date.now());
      proxy.options.manifestDelayMs = 300;
      const before = proxy.requests.length;
      const answers = await Promise.all([0, 1, 0, 1].map((i) => manifestDigest(v1(i))));
      proxy.options.manifestDelayMs = 0;
      assertEquals(proxy.count(headV1, before), 1, "one upstream check between two processes");
      assertOk(answers.includes(b.digest), `the checking process serves the new image: ${answers}`);

      await waitFor(
        "v1 moved",
        () => processes.some((p) => tagStored(p.logs(), "v1", b.digest)),
      );
      await proxy.stop();
      for (const i of [0, 1]) assertEquals(await manifestDigest(v1(i)), b.digest);
    } finally {
      for (const p of processes) await p.close();
      await proxy.stop();
      await upstream.close();
      await postgres.stop();
      await Deno.remove(blobs, { recursive: true });
    }
  },
});
