/**
 * Pull-through: a Wharf whose mirror has `pullThrough: true` answers a pull it does not have
 * from the upstream — the manifest byte for byte, blobs streamed while stored, fetched once for
 * concurrent misses — and then holds the image and its signature locally.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import { startRegistry } from "./harness.ts";
import { sha256 } from "./oci_client.ts";
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
