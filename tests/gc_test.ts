/**
 * Garbage collection, retention, scrub and limits against real servers and the real CLI:
 * signatures and referrers live and die with their subject, shared layers survive, pushes
 * racing a GC that runs every second stay intact.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { runWharf, startRegistry } from "./harness.ts";
import {
  descriptor,
  errorCode,
  pushBlob,
  pushImage,
  putManifest,
  randomBytes,
  sha256,
} from "./oci_client.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

function blobFile(dataDir: string, digest: string): string {
  const hex = digest.slice("sha256:".length);
  return join(dataDir, "blobs", "sha256", hex.slice(0, 2), hex);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function status(url: string, init?: RequestInit): Promise<number> {
  const response = await fetch(url, init);
  await response.body?.cancel();
  return response.status;
}

/** Pushes a cosign-style signature manifest for `subject` under the `.sig` tag. */
async function pushSignature(base: string, repo: string, subject: string): Promise<string> {
  const config = new TextEncoder().encode('{"architecture":"","os":""}');
  const payload = new TextEncoder().encode(
    JSON.stringify({ critical: { image: { "docker-manifest-digest": subject } } }),
  );
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, payload);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor("application/vnd.oci.image.config.v1+json", config),
    layers: [{
      ...descriptor("application/vnd.dev.cosign.simplesigning.v1+json", payload),
      annotations: { "dev.cosignproject.cosign/signature": "MEUCIQ==" },
    }],
  });
  const tag = `${subject.replace(":", "-")}.sig`;
  const { response } = await putManifest(base, repo, tag, manifest);
  assertEquals(response.status, 201);
  return sha256(manifest);
}

/** Pushes an SBOM-like referrer of `subject`, untagged. */
async function pushReferrer(base: string, repo: string, subject: { digest: string; size: number }) {
  const empty = new TextEncoder().encode("{}");
  await pushBlob(base, repo, empty);
  const doc = new TextEncoder().encode('{"spdxVersion":"SPDX-2.3"}');
  await pushBlob(base, repo, doc);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: "application/spdx+json",
    config: descriptor("application/vnd.oci.empty.v1+json", empty),
    layers: [descriptor("application/spdx+json", doc)],
    subject: { mediaType: OCI_MANIFEST, ...subject },
  });
  const digest = sha256(manifest);
  const { response } = await putManifest(base, repo, digest, manifest);
  assertEquals(response.status, 201);
  return digest;
}

Deno.test("gc: untagged images go with their signatures and referrers; shared content stays", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wharf-gc-" });
  const config = { gc: { gracePeriod: "0s" } };
  let registry = await startRegistry({ dataDir, config });
  try {
    const base = registry.url;
    const shared = randomBytes(3000);
    const sharedDigest = await pushBlob(base, "gc/app", shared);
    const a = await pushImage(base, "gc/app", "a", { layers: 1, layerSize: 5000 });
    const b = await pushImage(base, "gc/app", "b", { layers: 1, layerSize: 6000 });
    // Both images also use the shared layer: re-push their manifests with it added.
    const withShared = async (image: typeof a, tag: string) => {
      const manifest = JSON.parse(new TextDecoder().decode(image.manifest));
      manifest.layers.push(descriptor("application/vnd.oci.image.layer.v1.tar+gzip", shared));
      const bytes = new TextEncoder().encode(JSON.stringify(manifest));
      assertEquals((await putManifest(base, "gc/app", tag, bytes)).response.status, 201);
      return { ...image, manifest: bytes, digest: sha256(bytes) };
    };
    const imageA = await withShared(a, "a");
    const imageB = await withShared(b, "b");
    const sigA = await pushSignature(base, "gc/app", imageA.digest);
    const sigB = await pushSignature(base, "gc/app", imageB.digest);
    const refA = await pushReferrer(base, "gc/app", {
      digest: imageA.digest,
      size: imageA.manifest.length,
    });
    const refB = await pushReferrer(base, "gc/app", {
      digest: imageB.digest,
      size: imageB.manifest.length,
    });
    assertEquals(await status(`${base}/v2/gc/app/manifests/a`, { method: "DELETE" }), 202);
    await registry.close({ keepData: true });

    const dry = await runWharf([
      "gc",
      "--dry-run",
      "--json",
      "-d",
      dataDir,
      "-c",
      await writeConfig(dataDir, config),
    ]);
    assertEquals(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assertEquals(planned.dryRun, true);
    const plannedDigests = planned.manifestsDeleted.map((m: { digest: string }) => m.digest).sort();
    // b's first manifest was replaced under its tag, so it is untagged too.
    assertEquals(plannedDigests, [a.digest, b.digest, imageA.digest, sigA, refA].sort());
    assertOk(await exists(blobFile(dataDir, a.layers[0])), "a dry run removes nothing");

    const run = await runWharf([
      "gc",
      "--json",
      "-d",
      dataDir,
      "-c",
      await writeConfig(dataDir, config),
    ]);
    assertEquals(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assertEquals(report.tagsDeleted, [{
      repository: "gc/app",
      tag: `${imageA.digest.replace(":", "-")}.sig`,
      reason: "subject gone",
    }]);
    assertEquals(report.manifestsDeleted.length, 5);
    assertOk(report.bytesFreed >= 5000, `freed ${report.bytesFreed} bytes`);
    assertEquals(
      await exists(blobFile(dataDir, a.layers[0])),
      false,
      "A's own layer is gone from disk",
    );
    assertOk(await exists(blobFile(dataDir, sharedDigest)), "the shared layer stays");

    registry = await startRegistry({ dataDir, config });
    const again = registry.url;
    assertEquals(await status(`${again}/v2/gc/app/manifests/${imageA.digest}`), 404);
    assertEquals(await status(`${again}/v2/gc/app/manifests/${sigA}`), 404);
    assertEquals(await status(`${again}/v2/gc/app/manifests/${refA}`), 404);
    assertEquals(await status(`${again}/v2/gc/app/blobs/${a.layers[0]}`), 404);
    const pulled = await fetch(`${again}/v2/gc/app/manifests/b`);
    assertEquals(new Uint8Array(await pulled.arrayBuffer()), imageB.manifest);
    assertEquals(await status(`${again}/v2/gc/app/manifests/${sigB}`), 200);
    assertEquals(await status(`${again}/v2/gc/app/manifests/${refB}`), 200);
    const shared2 = await fetch(`${again}/v2/gc/app/blobs/${sharedDigest}`);
    assertEquals(new Uint8Array(await shared2.arrayBuffer()), shared);
    const referrers = await (await fetch(`${again}/v2/gc/app/referrers/${imageB.digest}`)).json();
    assertEquals(referrers.manifests.map((m: { digest: string }) => m.digest), [refB]);
  } finally {
    await registry.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

async function writeConfig(dataDir: string, config: Record<string, unknown>): Promise<string> {
  const path = join(dataDir, "gc-config.yaml");
  await Deno.writeTextFile(path, JSON.stringify(config)); // JSON is YAML
  return path;
}

Deno.test("gc: 20 parallel pushes sharing layers while GC runs every second", async () => {
  const registry = await startRegistry({
    config: { gc: { schedule: "* * * * * *", gracePeriod: "5s" } },
  });
  try {
    const base = registry.url;
    const shared = [randomBytes(200_000), randomBytes(300_000)];
    const push = async (i: number) => {
      const repo = `load/app${i % 4}`;
      for (const layer of shared) await pushBlob(base, repo, layer);
      const image = await pushImage(base, repo, `v${i}`, {
        layers: 2,
        layerSize: 50_000,
      });
      const manifest = JSON.parse(new TextDecoder().decode(image.manifest));
      manifest.layers.push(
        ...shared.map((l) => descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l)),
      );
      const bytes = new TextEncoder().encode(JSON.stringify(manifest));
      const { response, text } = await putManifest(base, repo, `v${i}`, bytes);
      assertEquals(response.status, 201, text);
      return {
        repo,
        tag: `v${i}`,
        bytes,
        layers: [...image.layers, ...shared.map((l) => sha256(l))],
      };
    };
    const deadline = Date.now() + 3000;
    const pushed = [];
    while (Date.now() < deadline) {
      pushed.push(
        ...await Promise.all(Array.from({ length: 20 }, (_, i) => push(pushed.length + i))),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1500)); // let at least one more GC pass run
    assertMatch(registry.logs(), /"msg":"gc finished"/);
    const exposition = await (await fetch(`${base}/metrics`)).text();
    assertMatch(exposition, /wharf_gc_runs_total\{outcome="success"\} [1-9]/);
    for (const image of pushed) {
      const manifest = await fetch(`${base}/v2/${image.repo}/manifests/${image.tag}`);
      assertEquals(
        new Uint8Array(await manifest.arrayBuffer()),
        image.bytes,
        `${image.repo}:${image.tag}`,
      );
      for (const layer of image.layers) {
        const blob = await fetch(`${base}/v2/${image.repo}/blobs/${layer}`);
        assertEquals(sha256(new Uint8Array(await blob.arrayBuffer())), layer);
      }
    }
    console.log(`pushed and verified ${pushed.length} images while GC ran every second`);
  } finally {
    await registry.close();
  }
});

Deno.test("retention keeps the newest tags; limits refuse oversized uploads and full quotas", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wharf-ret-" });
  const config = {
    gc: { gracePeriod: "0s" },
    retention: [{ repositories: ["ret/**"], keepLast: 2, keepTags: "^stable$" }],
    limits: [
      { repositories: ["small/**"], maxUploadSize: "1KiB" },
      { repositories: ["quota/**"], quota: "3KiB" },
    ],
  };
  const registry = await startRegistry({ dataDir, config });
  try {
    const base = registry.url;
    for (const tag of ["stable", "t1", "t2", "t3"]) {
      await pushImage(base, "ret/app", tag, { layers: 1 });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const big = randomBytes(2048);
    const start = await fetch(`${base}/v2/small/app/blobs/uploads/?digest=${sha256(big)}`, {
      method: "POST",
      body: big,
    });
    assertEquals(start.status, 413);
    assertEquals(await errorCode(start), "SIZE_INVALID");
    assertEquals(
      await status(`${base}/v2/small/app/blobs/${sha256(big)}`, { method: "HEAD" }),
      404,
    );
    await pushBlob(base, "small/app", randomBytes(1000));
    await pushBlob(base, "quota/app", randomBytes(2000));
    const over = randomBytes(2000);
    const post = await fetch(`${base}/v2/quota/app/blobs/uploads/`, { method: "POST" });
    await post.body?.cancel();
    const location = new URL(post.headers.get("location")!, base);
    const patch = await fetch(location, { method: "PATCH", body: over });
    assertEquals(patch.status, 403);
    const body = await patch.json();
    assertEquals(body.errors[0].code, "DENIED");
    assertMatch(body.errors[0].message, /quota/);
  } finally {
    await registry.close({ keepData: true });
  }
  try {
    const gc = await runWharf([
      "gc",
      "--json",
      "-d",
      dataDir,
      "-c",
      await writeConfig(dataDir, config),
    ]);
    assertEquals(gc.code, 0, gc.stderr);
    const report = JSON.parse(gc.stdout);
    assertEquals(report.tagsDeleted.map((t: { tag: string }) => t.tag), ["t1"]);
    const again = await startRegistry({ dataDir, config });
    try {
      const tags = await (await fetch(`${again.url}/v2/ret/app/tags/list`)).json();
      assertEquals(tags.tags, ["stable", "t2", "t3"]);
    } finally {
      await again.close({ keepData: true });
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("scrub finds and quarantines a corrupted blob", async () => {
  const registry = await startRegistry();
  const dataDir = registry.dataDir;
  try {
    const good = await pushBlob(registry.url, "scrub/app", randomBytes(4096));
    const bad = await pushBlob(registry.url, "scrub/app", randomBytes(4096));
    await registry.close({ keepData: true });
    const file = blobFile(dataDir, bad);
    const bytes = await Deno.readFile(file);
    bytes[100] ^= 0xff;
    await Deno.writeFile(file, bytes);
    const refused = await runWharf(["scrub", "-d", dataDir, "--report-only"]);
    assertEquals(refused.code, 2);
    assertMatch(refused.stdout, new RegExp(`${bad} has content sha256:`));
    const scrubbed = await runWharf(["scrub", "-d", dataDir]);
    assertEquals(scrubbed.code, 2);
    assertMatch(scrubbed.stdout, /1 corrupt/);
    assertOk(await exists(join(dataDir, "quarantine", bad.replace(":", "-"))));
    const again = await startRegistry({ dataDir });
    try {
      assertEquals(await status(`${again.url}/v2/scrub/app/blobs/${bad}`), 404);
      assertEquals(await status(`${again.url}/v2/scrub/app/blobs/${good}`), 200);
    } finally {
      await again.close({ keepData: true });
    }
    const clean = await runWharf(["scrub", "-d", dataDir]);
    assertEquals(clean.code, 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
