/**
 * Mirroring end to end, with two real upstreams started here: a Wharf with token auth (cosign
 * tags, OCI referrers, an atomic signature through the extension API, a multi-platform index)
 * and distribution's `docker-registry` (cosign tags, no referrers API). The mirror is a real
 * `wharf serve` whose scheduler runs the Wharf mirror; the distribution mirror runs from
 * `wharf sync run` against the same data directory while the server runs. Afterwards the mirror
 * holds exactly the filtered set with every attachment and identical digests, `skopeo copy`
 * verifies the mirrored signature through a `sigstoreSigned` policy, a second run is
 * incremental, deleteMissing removes what the upstream removed, and SIGHUP reloads mirrors.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals, assertOk } from "./assert.ts";
import { runWharf, startRegistry, writeHtpasswd } from "./harness.ts";
import { startDistribution } from "./distribution.ts";
import {
  attestAndSbom,
  clientFor,
  makeKeys,
  pushReferrer,
  pushTestImage,
  signImage,
} from "./sync_fixtures.ts";
import {
  CONFIG,
  DIGEST as ATOMIC_DIGEST,
  MANIFEST,
  SIGNED,
} from "../plugins/atomic-signatures/_fixtures.ts";

const SKOPEO = Deno.env.get("SKOPEO_SIGSTORE") ??
  new URL("../../shared/bin/skopeo", import.meta.url).pathname;
const skopeoAvailable = await Deno.stat(SKOPEO).then(() => true, () => false);
if (!skopeoAvailable) {
  console.warn(`sync_e2e_test: skopeo verification skipped — no sigstore skopeo at ${SKOPEO}`);
}

async function tagsOf(base: string, repo: string): Promise<string[]> {
  const response = await fetch(`${base}/v2/${repo}/tags/list`);
  if (response.status !== 200) {
    await response.body?.cancel();
    return [];
  }
  return ((await response.json()).tags ?? []).sort();
}

async function digestOf(base: string, repo: string, ref: string): Promise<string | null> {
  const response = await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    method: "HEAD",
    headers: {
      accept: [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
      ].join(", "),
    },
  });
  await response.body?.cancel();
  return response.status === 200 ? response.headers.get("docker-content-digest") : null;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

Deno.test("sync: two real upstreams mirrored with filters and every attachment", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-e2e-" });
  const upstream = await startRegistry({
    config: {
      auth: {
        htpasswd: await writeHtpasswd(dir, { alice: "alice-pw", mirror: "mirror-pw" }),
        rules: [
          { repositories: ["**"], users: ["alice"], actions: ["*"] },
          { repositories: ["**"], users: ["mirror"], actions: ["pull"] },
        ],
      },
    },
  });
  const distribution = await startDistribution();
  const keys = await makeKeys(dir);
  const mirrorData = join(dir, "mirror-data");
  let mirror: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    const up = clientFor(upstream.host, { username: "alice", password: "alice-pw" });
    const identity = `${upstream.host}/team/app`;
    const images: Record<string, Awaited<ReturnType<typeof pushTestImage>>> = {};
    for (const tag of ["1.0.0", "1.2.0", "1.3.0", "2.0.0", "latest"]) {
      images[tag] = await pushTestImage(up, "team/app", tag);
    }
    // 1.2.0: legacy cosign signature, attestation and SBOM tags, plus an OCI referrer.
    await signImage(up, "team/app", images["1.2.0"], keys.key, identity);
    await attestAndSbom(up, "team/app", images["1.2.0"], keys.key, identity);
    const exampleReferrer = await pushReferrer(
      up,
      "team/app",
      images["1.2.0"],
      "application/vnd.example.report",
    );
    // 1.3.0: a cosign signature stored as an OCI 1.1 referrer (the upstream indexes it).
    const referrerSig = await signImage(up, "team/app", images["1.3.0"], keys.key, identity, {
      referrers: true,
    });
    // 1.0.0 and 2.0.0 are out of range: their signatures must not come along.
    await signImage(up, "team/app", images["2.0.0"], keys.key, identity);
    // An atomic (GPG) signature on a manifest tagged 1.2.5, through the extension API.
    await up.pushBlob("team/app", CONFIG);
    await up.putManifest(
      "team/app",
      "1.2.5",
      MANIFEST,
      "application/vnd.oci.image.manifest.v1+json",
    );
    const atomicPut = await fetch(
      `${upstream.url}/extensions/v2/team/app/signatures/${ATOMIC_DIGEST}`,
      {
        method: "PUT",
        headers: { authorization: `Basic ${btoa("alice:alice-pw")}` },
        body: JSON.stringify({
          schemaVersion: 2,
          type: "atomic",
          name: `${ATOMIC_DIGEST}@0123456789abcdef0123456789abcdef`,
          content: SIGNED,
        }),
      },
    );
    assertEquals(atomicPut.status, 201, await atomicPut.text());
    // A two-platform index; the mirror wants linux/amd64 only.
    const multi = await pushTestImage(up, "team/multi", "1.5.0", {
      platforms: ["linux/amd64", "linux/arm64"],
    });
    await pushTestImage(up, "other/thing", "1.2.0");

    let distImage: Awaited<ReturnType<typeof pushTestImage>> | undefined;
    if (distribution) {
      const dist = clientFor(distribution.host);
      distImage = await pushTestImage(dist, "lib/tool", "v1");
      await pushTestImage(dist, "lib/tool", "v2");
      await signImage(dist, "lib/tool", distImage, keys.key, `${distribution.host}/lib/tool`);
      await attestAndSbom(dist, "lib/tool", distImage, keys.key, `${distribution.host}/lib/tool`);
    }

    const mirrors: Record<string, unknown>[] = [{
      name: "wharf-up",
      upstream: upstream.url,
      credentials: { username: "mirror", passwordEnv: "SYNC_TEST_PASSWORD" },
      repositories: ["team/*"],
      tags: { semver: ">=1.2 <2" },
      platforms: ["linux/amd64"],
      destination: { prefix: "mirror/" },
      schedule: "2s",
      retries: { attempts: 2, delay: "50ms" },
    }];
    if (distribution) {
      mirrors.push({
        name: "dist",
        upstream: distribution.url,
        repositories: ["lib/tool"],
        tags: { include: ["^v"] },
        destination: { prefix: "dist/", stripPrefix: "lib/" },
        deleteMissing: true,
      });
    }
    const config = { mirrors };
    const configPath = join(dir, "mirror.yaml");
    await Deno.writeTextFile(configPath, stringify(config));
    mirror = await startRegistry({
      dataDir: mirrorData,
      config,
      env: { SYNC_TEST_PASSWORD: "mirror-pw" },
    });
    const base = mirror.url;

    await t.step("the scheduler runs the Wharf mirror; GET /wharf/v1/sync shows it", async () => {
      const run = await waitFor("a finished scheduled run", async () => {
        const response = await fetch(`${base}/wharf/v1/sync?mirror=wharf-up`);
        assertEquals(response.status, 200);
        const body = await response.json();
        // The first scheduled run (runs are newest first; a later tick may have run already).
        return body.runs.filter((r: { outcome: string }) => r.outcome !== "running").at(-1);
      });
      assertEquals(run.outcome, "success", JSON.stringify(run.errors));
      assertEquals(run.trigger, "schedule");
      assertEquals(run.images, 4, JSON.stringify(run)); // 1.2.0, 1.2.5, 1.3.0, multi:1.5.0
      assertOk(run.bytes > 0);
    });

    await t.step("exactly the filtered set, with identical digests", async () => {
      const tags = await tagsOf(base, "mirror/team/app");
      const hex = (d: string) => d.replace(":", "-");
      const expected = [
        "1.2.0",
        "1.2.5",
        "1.3.0",
        `${hex(images["1.2.0"].digest)}.att`,
        `${hex(images["1.2.0"].digest)}.sbom`,
        `${hex(images["1.2.0"].digest)}.sig`,
      ].sort();
      assertEquals(tags, expected);
      for (const tag of ["1.2.0", "1.3.0"]) {
        assertEquals(await digestOf(base, "mirror/team/app", tag), images[tag].digest);
      }
      for (const tag of expected) {
        const upstreamInfo = await up.headManifest("team/app", tag);
        assertEquals(await digestOf(base, "mirror/team/app", tag), upstreamInfo?.digest ?? null);
      }
      assertEquals(await tagsOf(base, "mirror/other/thing"), []);
    });

    await t.step("referrers and the atomic signature came along", async () => {
      const referrers = async (digest: string) =>
        (await (await fetch(`${base}/v2/mirror/team/app/referrers/${digest}`)).json()).manifests
          .map((m: { digest: string }) => m.digest);
      assertEquals(await referrers(images["1.2.0"].digest), [exampleReferrer]);
      assertEquals(await referrers(images["1.3.0"].digest), [referrerSig.digest]);
      const atomic = await fetch(
        `${base}/extensions/v2/mirror/team/app/signatures/${ATOMIC_DIGEST}`,
      );
      assertEquals(atomic.status, 200);
      const signatures = (await atomic.json()).signatures;
      assertEquals(signatures.length, 1);
      assertEquals(signatures[0].content, SIGNED);
    });

    await t.step("a partially copied index keeps its children's digests", async () => {
      const digest = await digestOf(base, "mirror/team/multi", "1.5.0");
      assertOk(digest && digest !== multi.digest, "a filtered index has a new digest");
      const index = await (await fetch(`${base}/v2/mirror/team/multi/manifests/1.5.0`, {
        headers: { accept: "application/vnd.oci.image.index.v1+json" },
      })).json();
      assertEquals(index.manifests.map((m: { digest: string }) => m.digest), [
        multi.children[0].digest,
      ]);
      assertEquals(index.annotations["dev.wharf.mirror.source-index"], multi.digest);
      assertEquals(await digestOf(base, "mirror/team/multi", multi.children[1].digest), null);
    });

    if (skopeoAvailable) {
      await t.step("skopeo verifies the mirrored signature (sigstoreSigned)", async () => {
        const registriesD = join(dir, "registries.d");
        await Deno.mkdir(registriesD, { recursive: true });
        await Deno.writeTextFile(
          join(registriesD, "mirror.yaml"),
          `docker:\n  ${mirror!.host}:\n    use-sigstore-attachments: true\n`,
        );
        const policy = join(dir, "policy.json");
        const requirement = [{
          type: "sigstoreSigned",
          keyPath: keys.publicPath,
          // cosign-style signatures name the upstream repository, without a tag.
          signedIdentity: { type: "exactRepository", dockerRepository: identity },
        }];
        await Deno.writeTextFile(
          policy,
          JSON.stringify({
            default: [{ type: "reject" }],
            transports: { docker: { [`${mirror!.host}/mirror/team/app`]: requirement } },
          }),
        );
        const copy = (tag: string) =>
          new Deno.Command(SKOPEO, {
            args: [
              "copy",
              "--policy",
              policy,
              "--registries.d",
              registriesD,
              "--src-tls-verify=false",
              `docker://${mirror!.host}/mirror/team/app:${tag}`,
              `dir:${join(dir, `out-${tag}`)}`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
        const signed = await copy("1.2.0");
        assertOk(signed.success, new TextDecoder().decode(signed.stderr));
        const unsigned = await copy("1.2.5");
        assertEquals(unsigned.success, false, "an image without a cosign signature is refused");
      });
    }

    if (distribution && distImage) {
      await t.step("wharf sync run mirrors distribution while the server runs", async () => {
        const run = await runWharf(["sync", "run", "dist", "-c", configPath, "-d", mirrorData]);
        assertEquals(run.code, 0, run.stdout + run.stderr);
        const hex = distImage!.digest.replace(":", "-");
        assertEquals(
          await tagsOf(base, "dist/tool"),
          ["v1", "v2", `${hex}.att`, `${hex}.sbom`, `${hex}.sig`].sort(),
        );
        assertEquals(await digestOf(base, "dist/tool", "v1"), distImage!.digest);
        for (const suffix of [".sig", ".att", ".sbom"]) {
          assertEquals(
            await digestOf(base, "dist/tool", hex + suffix),
            await digestOf(distribution.url, "lib/tool", hex + suffix),
          );
        }
      });

      await t.step("a second run is incremental; deleteMissing follows the upstream", async () => {
        const again = await runWharf([
          "sync",
          "run",
          "dist",
          "--json",
          "-q",
          "-c",
          configPath,
          "-d",
          mirrorData,
        ]);
        assertEquals(again.code, 0, again.stderr);
        const [report] = JSON.parse(again.stdout);
        assertEquals([report.images, report.unchanged, report.blobs], [0, 2, 0]);
        const v2 = await digestOf(distribution.url, "lib/tool", "v2");
        const deleted = await fetch(`${distribution.url}/v2/lib/tool/manifests/${v2}`, {
          method: "DELETE",
        });
        assertEquals(deleted.status, 202);
        const third = await runWharf([
          "sync",
          "run",
          "dist",
          "--json",
          "-q",
          "-d",
          mirrorData,
          "-c",
          configPath,
        ]);
        const [after] = JSON.parse(third.stdout);
        assertEquals(after.deleted, 1, third.stdout);
        assertOk(!(await tagsOf(base, "dist/tool")).includes("v2"));
        const status = await runWharf(["sync", "status", "-c", configPath, "-d", mirrorData]);
        assertEquals(status.code, 0, status.stderr);
        assertOk(/dist\s+cli\s+\S+\s+\S+\s+success/.test(status.stdout), status.stdout);
        assertOk(/wharf-up\s+schedule/.test(status.stdout), status.stdout);
      });
    }

    await t.step("SIGHUP (wharf sync reload) picks up a changed mirror list", async () => {
      const changed = { mirrors: [{ ...mirrors[0], schedule: "0 3 * * *" }] };
      await Deno.writeTextFile(join(mirrorData, "test-config.yaml"), stringify(changed));
      const reload = await runWharf(["sync", "reload", "-d", mirrorData]);
      assertEquals(reload.code, 0, reload.stderr);
      const status = await waitFor("the reloaded schedule", async () => {
        const body = await (await fetch(`${base}/wharf/v1/sync`)).json();
        return body.mirrors.length === 1 && body.mirrors[0].schedule === "0 3 * * *"
          ? body
          : undefined;
      }, 10_000);
      assertOk(status.mirrors[0].nextRun.endsWith("03:00:00.000Z"));
      // The server kept answering throughout.
      assertEquals((await fetch(`${base}/v2/`)).status, 200);
    });
  } finally {
    await mirror?.close();
    await distribution?.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
