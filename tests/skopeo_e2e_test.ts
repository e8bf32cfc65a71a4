/**
 * End-to-end tests with the real `skopeo` client (Debian package): images built locally as OCI
 * layouts are pushed to a running Wharf and pulled back, and every digest must survive the round
 * trip byte for byte. Skipped, with the reason, when skopeo is not installed.
 *
 * `E2E_TARGET=distribution` runs the same cases against CNCF distribution instead, to check the
 * expectations themselves against the reference implementation.
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { startDistribution } from "./distribution.ts";
import { startRegistry } from "./harness.ts";
import {
  blobPath,
  initLayout,
  type LayoutImage,
  MEDIA_TYPES,
  readTag,
  sha256,
  tagLayout,
  writeImage,
  writeIndex,
} from "./oci_layout.ts";

const SKOPEO = Deno.env.get("SKOPEO") ?? "skopeo";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

function skopeoVersion(): string | undefined {
  try {
    const out = new Deno.Command(SKOPEO, { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const version = skopeoVersion();
const ignore = version === undefined;
if (ignore) {
  console.warn(
    `skopeo_e2e_test: skipped — "${SKOPEO}" was not found or failed to run ` +
      "(install the Debian package skopeo, or set SKOPEO to its path)",
  );
}

interface Target {
  url: string;
  host: string;
  logs(): string;
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  if (Deno.env.get("E2E_TARGET") === "distribution") {
    const registry = await startDistribution();
    if (!registry) throw new Error("E2E_TARGET=distribution but docker-registry is missing");
    return registry;
  }
  return await startRegistry();
}

/** Runs skopeo with the trust policy disabled (the tests push unsigned local images). */
async function skopeo(...args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(SKOPEO, {
    args: ["--insecure-policy", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`skopeo ${args.join(" ")} failed (exit ${out.code}):\n${stderr}`);
  }
  return out.stdout;
}

/** Runs `fn` with a fresh registry and temp directory, and always cleans both up. */
async function withRegistry(
  fn: (registry: Target, tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "wharf-skopeo-" });
  const registry = await startTarget();
  try {
    await fn(registry, tmp);
  } catch (err) {
    console.error(`registry log:\n${registry.logs()}`);
    throw err;
  } finally {
    await registry.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

async function assertSameBlob(srcDir: string, outDir: string, digest: string): Promise<void> {
  const copied = await Deno.readFile(blobPath(outDir, digest));
  assertEquals(sha256(copied), digest, `blob ${digest} changed on the round trip`);
  assertEquals(copied, await Deno.readFile(blobPath(srcDir, digest)));
}

async function assertImageCopied(srcDir: string, outDir: string, image: LayoutImage) {
  assertEquals(await Deno.readFile(blobPath(outDir, image.descriptor.digest)), image.manifest);
  for (const blob of image.blobs) await assertSameBlob(srcDir, outDir, blob.digest);
}

async function pushLayout(src: string, tag: string, dest: string, ...flags: string[]) {
  await skopeo("copy", "--quiet", "--dest-tls-verify=false", ...flags, `oci:${src}:${tag}`, dest);
}

Deno.test({
  name: "skopeo: multi-layer OCI image round trip keeps every digest",
  ignore,
  fn: () =>
    withRegistry(async (registry, tmp) => {
      const src = join(tmp, "src");
      const out = join(tmp, "out");
      await initLayout(src);
      // One layer is larger than skopeo's and the server's usual buffer sizes.
      const image = await writeImage(src, { layerSizes: [512, 70_000, 300_000, 5 << 20] });
      await tagLayout(src, "v1", image.descriptor);

      const ref = `docker://${registry.host}/e2e/app:v1`;
      await pushLayout(src, "v1", ref, "--preserve-digests");
      const raw = await skopeo("inspect", "--raw", "--tls-verify=false", ref);
      assertEquals(raw, image.manifest, "inspect --raw must return the pushed manifest bytes");

      await skopeo(
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--preserve-digests",
        ref,
        `oci:${out}:v1`,
      );
      const pulled = await readTag(out, "v1");
      assertEquals(pulled?.digest, image.descriptor.digest);
      assertEquals(pulled?.mediaType, MEDIA_TYPES.manifest);
      await assertImageCopied(src, out, image);

      // The registry names the same digest over plain HTTP.
      const res = await fetch(`${registry.url}/v2/e2e/app/manifests/v1`, {
        headers: { accept: MEDIA_TYPES.manifest },
      });
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("docker-content-digest"), image.descriptor.digest);
      assertEquals(res.headers.get("content-type"), MEDIA_TYPES.manifest);
      assertEquals(new Uint8Array(await res.arrayBuffer()), image.manifest);
    }),
});

Deno.test({
  name: "skopeo: two-platform OCI index copied with --all keeps index and child digests",
  ignore,
  fn: () =>
    withRegistry(async (registry, tmp) => {
      const src = join(tmp, "src");
      const out = join(tmp, "out");
      await initLayout(src);
      const amd64 = await writeImage(src, { architecture: "amd64", layerSizes: [20_000, 40_000] });
      const arm64 = await writeImage(src, { architecture: "arm64", layerSizes: [30_000, 50_000] });
      const index = await writeIndex(src, [amd64, arm64]);
      await tagLayout(src, "multi", index.descriptor);

      const ref = `docker://${registry.host}/e2e/multi:v1`;
      await pushLayout(src, "multi", ref, "--all", "--preserve-digests");
      const raw = await skopeo("inspect", "--raw", "--tls-verify=false", ref);
      assertEquals(raw, index.index, "inspect --raw must return the pushed index bytes");

      await skopeo(
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--all",
        "--preserve-digests",
        ref,
        `oci:${out}:v1`,
      );
      const pulled = await readTag(out, "v1");
      assertEquals(pulled?.digest, index.descriptor.digest);
      assertEquals(pulled?.mediaType, MEDIA_TYPES.index);
      assertEquals(await Deno.readFile(blobPath(out, index.descriptor.digest)), index.index);
      await assertImageCopied(src, out, amd64);
      await assertImageCopied(src, out, arm64);

      // Each child is also addressable by digest in the repository.
      for (const child of [amd64, arm64]) {
        const childRaw = await skopeo(
          "inspect",
          "--raw",
          "--tls-verify=false",
          `docker://${registry.host}/e2e/multi@${child.descriptor.digest}`,
        );
        assertEquals(childRaw, child.manifest);
      }
    }),
});

Deno.test({
  name: "skopeo: delete removes the tag, which then answers 404",
  ignore,
  fn: () =>
    withRegistry(async (registry, tmp) => {
      const src = join(tmp, "src");
      await initLayout(src);
      const doomed = await writeImage(src, { layerSizes: [10_000] });
      const kept = await writeImage(src, { layerSizes: [11_000] });
      await tagLayout(src, "doomed", doomed.descriptor);
      await tagLayout(src, "kept", kept.descriptor);
      const repo = `docker://${registry.host}/e2e/delete`;
      await pushLayout(src, "doomed", `${repo}:doomed`, "--preserve-digests");
      await pushLayout(src, "kept", `${repo}:kept`, "--preserve-digests");

      // skopeo resolves the tag to its digest and deletes the manifest by digest.
      await skopeo("delete", "--tls-verify=false", `${repo}:doomed`);

      for (const reference of ["doomed", doomed.descriptor.digest]) {
        const res = await fetch(`${registry.url}/v2/e2e/delete/manifests/${reference}`, {
          headers: { accept: MEDIA_TYPES.manifest },
        });
        const body = await res.text();
        assertEquals(res.status, 404, `GET manifests/${reference} after delete: ${body}`);
        assertMatch(body, /MANIFEST_UNKNOWN/);
      }
      let inspectError = "";
      await skopeo("inspect", "--raw", "--tls-verify=false", `${repo}:doomed`).catch((err) => {
        inspectError = String(err);
      });
      assertMatch(inspectError, /manifest unknown|not found|404/i);

      // The other tag of the repository is untouched.
      const raw = await skopeo("inspect", "--raw", "--tls-verify=false", `${repo}:kept`);
      assertEquals(raw, kept.manifest);
      const tags = JSON.parse(
        new TextDecoder().decode(await skopeo("list-tags", "--tls-verify=false", repo)),
      );
      assertEquals(tags.Tags, ["kept"]);
    }),
});

Deno.test({
  name: "skopeo: list-tags returns every pushed tag",
  ignore,
  fn: () =>
    withRegistry(async (registry, tmp) => {
      const src = join(tmp, "src");
      await initLayout(src);
      const image = await writeImage(src, { layerSizes: [2_000] });
      const other = await writeImage(src, { layerSizes: [3_000] });
      await tagLayout(src, "a", image.descriptor);
      await tagLayout(src, "b", other.descriptor);
      const repo = `docker://${registry.host}/e2e/tags`;
      const expected = ["1.0", "1.0.1", "latest", "v2"];
      for (const tag of expected) {
        await pushLayout(src, tag === "v2" ? "b" : "a", `${repo}:${tag}`, "--preserve-digests");
      }
      const out = JSON.parse(
        new TextDecoder().decode(await skopeo("list-tags", "--tls-verify=false", repo)),
      );
      assertEquals(out.Repository, `${registry.host}/e2e/tags`);
      assertEquals([...out.Tags].sort(), expected);

      // A repository that does not exist is an error, not an empty list.
      let missing = "";
      await skopeo("list-tags", "--tls-verify=false", `docker://${registry.host}/e2e/none`)
        .catch((err) => missing = String(err));
      assertMatch(missing, /NAME_UNKNOWN|name unknown|not found|404/i);
    }),
});

Deno.test({
  name: "skopeo: image converted to Docker schema 2 round-trips byte-identical",
  ignore,
  fn: () =>
    withRegistry(async (registry, tmp) => {
      const src = join(tmp, "src");
      const out = join(tmp, "dir");
      await initLayout(src);
      const image = await writeImage(src, { layerSizes: [1_000, 60_000, 200_000] });
      await tagLayout(src, "v1", image.descriptor);

      // Converting changes the manifest (and config) digests, but never the layer bytes.
      const ref = `docker://${registry.host}/e2e/docker:v1`;
      await pushLayout(src, "v1", ref, "--format", "v2s2");
      const raw = await skopeo("inspect", "--raw", "--tls-verify=false", ref);
      const manifest = JSON.parse(new TextDecoder().decode(raw));
      assertEquals(manifest.mediaType, DOCKER_MANIFEST);
      assertEquals(
        manifest.layers.map((layer: { digest: string }) => layer.digest),
        image.blobs.slice(1).map((blob) => blob.digest),
      );

      const res = await fetch(`${registry.url}/v2/e2e/docker/manifests/v1`, {
        headers: { accept: DOCKER_MANIFEST },
      });
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("content-type"), DOCKER_MANIFEST);
      assertEquals(res.headers.get("docker-content-digest"), sha256(raw));
      assertEquals(new Uint8Array(await res.arrayBuffer()), raw);

      // Pull it into a `dir:` copy and push that to a second repository unchanged.
      await skopeo(
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--preserve-digests",
        ref,
        `dir:${out}`,
      );
      assertEquals(await Deno.readFile(join(out, "manifest.json")), raw);
      await skopeo(
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--preserve-digests",
        `dir:${out}`,
        `docker://${registry.host}/e2e/docker-copy:v1`,
      );
      const copied = await skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        `docker://${registry.host}/e2e/docker-copy:v1`,
      );
      assertEquals(copied, raw);
      const config = await Deno.readFile(join(out, manifest.config.digest.split(":")[1]));
      assertEquals(sha256(config), manifest.config.digest);
      assertOk(manifest.layers.length === 3);
    }),
});
