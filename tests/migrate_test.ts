/**
 * `wharf migrate` end to end, with the real CLI and real stores: a registry built by a real
 * server on a directory + SQLite is moved to PostgreSQL + Ceph RGW (S3) — interrupted by
 * SIGKILL in the middle of a large blob and resumed — served from there byte for byte (atomic
 * signatures of the extension API included: plugin data carried between the databases),
 * migrated again (nothing to copy) and back to a fresh directory + SQLite. Also: one-line errors,
 * a corrupt source blob, a target plugin that refuses a manifest, a dry run. The PostgreSQL +
 * Ceph test is skipped, saying why, when either is not installed.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "./ceph_rgw.ts";
import { runWharf, startRegistry } from "./harness.ts";
import { descriptor, pushBlob, putManifest, randomBytes, sha256 } from "./oci_client.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";
import { S3BlobStore } from "../src/storage/s3.ts";
import { PostgresMetadataStore } from "../src/metadata/postgres.ts";
import type { Digest } from "../src/oci/digest.ts";
import type { MigrationReport } from "../src/migrate/report.ts";
import {
  CONFIG as SIGNED_CONFIG,
  DIGEST as SIGNED_DIGEST,
  MANIFEST as SIGNED_MANIFEST,
  SIGNED,
} from "../plugins/atomic-signatures/_fixtures.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const API = new URL("../src/plugins/api.ts", import.meta.url).href;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const ACCEPT = [OCI_MANIFEST, OCI_INDEX].join(", ");
const BIG = 32 << 20;
const encoder = new TextEncoder();

/** What the source holds, for the assertions. */
interface Source {
  dir: string;
  /** Every tag, manifest, blob and referrer as served, with content digests. */
  inventory: Record<string, string>;
  image: string;
  big: string;
  /** A layer only the `demo/app:v1` image uses. */
  ownLayer: string;
}

// Distinct blobs, manifests and tags that buildSource pushes (see there).
const BLOBS = 15;
const MANIFESTS = 9;
const TAGS = 8;
/** Rows the atomic-signatures plugin carries: two signatures and their artifact index records. */
const PLUGIN_ROWS = 4;
/** An atomic signature the plugin keeps unread (compressed with BZip2): every byte value. */
const RAW_SIGNATURE = new Uint8Array([0xa3, 0x03, ...Array.from({ length: 256 }, (_, i) => i)]);

/**
 * Pushes, through a real server on `dir`: `demo/app` (a three-layer image tagged v1 and latest,
 * its cosign `.sig` tag, an image with a 32 MiB layer, an image tagged `signed` with two atomic
 * signatures PUT through the signatures extension API), `demo/multi` (a two-platform index
 * tagged multi and stable, an SPDX referrer of the index, an image annotated for the refusing
 * test plugin), a layer and an empty config shared by both repositories, and an upload session
 * left open. Stops the server and returns the inventory it served.
 */
async function buildSource(dir: string): Promise<Source> {
  const server = await startRegistry({ dataDir: dir });
  try {
    const base = server.url;
    const blob = async (repo: string, bytes: Uint8Array<ArrayBuffer>, mediaType: string) => {
      await pushBlob(base, repo, bytes);
      return descriptor(mediaType, bytes);
    };
    const config = (repo: string, n: number) =>
      blob(repo, encoder.encode(`{"architecture":"amd64","os":"linux","n":${n}}`), CONFIG);
    const manifest = async (repo: string, reference: string, body: object, type = OCI_MANIFEST) => {
      const bytes = encoder.encode(JSON.stringify({ schemaVersion: 2, mediaType: type, ...body }));
      const { response, text } = await putManifest(base, repo, reference, bytes, type);
      if (response.status !== 201) throw new Error(`PUT ${repo}:${reference}: ${text}`);
      return descriptor(type, bytes);
    };
    const shared = randomBytes(200_000);
    const empty = encoder.encode("{}");

    const own = await blob("demo/app", randomBytes(300_000), LAYER);
    const image = await manifest("demo/app", "v1", {
      config: await config("demo/app", 1),
      layers: [
        await blob("demo/app", shared, LAYER),
        await blob("demo/app", randomBytes(1000), LAYER),
        own,
      ],
    });
    await manifest(
      "demo/app",
      "latest",
      JSON.parse(
        new TextDecoder().decode(await (await fetch(`${base}/v2/demo/app/manifests/v1`)).bytes()),
      ),
    );
    const payload = encoder.encode(JSON.stringify({
      critical: {
        identity: { "docker-reference": "demo/app" },
        image: { "docker-manifest-digest": image.digest },
        type: "cosign container image signature",
      },
    }));
    await manifest("demo/app", `${image.digest.replace(":", "-")}.sig`, {
      config: await blob("demo/app", empty, CONFIG),
      layers: [{
        ...await blob("demo/app", payload, SIMPLE_SIGNING),
        annotations: { "dev.cosignproject.cosign/signature": "MEUCIQDtest" },
      }],
    });
    const bigLayer = await blob("demo/app", randomBytes(BIG), LAYER);
    await manifest("demo/app", "big", { config: await config("demo/app", 2), layers: [bigLayer] });

    const platforms = [];
    for (const [n, arch] of [[3, "amd64"], [4, "arm64"]] as const) {
      const child = {
        config: await config("demo/multi", n),
        layers: [
          await blob("demo/multi", shared, LAYER),
          await blob("demo/multi", randomBytes(500), LAYER),
        ],
      };
      const bytes = encoder.encode(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, ...child }),
      );
      await manifest("demo/multi", sha256(bytes), child);
      platforms.push({
        ...descriptor(OCI_MANIFEST, bytes),
        platform: { os: "linux", architecture: arch },
      });
    }
    const index = await manifest("demo/multi", "multi", { manifests: platforms }, OCI_INDEX);
    await manifest("demo/multi", "stable", { manifests: platforms }, OCI_INDEX);
    const sbom = {
      artifactType: "application/spdx+json",
      config: await blob("demo/multi", empty, "application/vnd.oci.empty.v1+json"),
      layers: [
        await blob(
          "demo/multi",
          encoder.encode('{"spdxVersion":"SPDX-2.3"}'),
          "application/spdx+json",
        ),
      ],
      subject: index,
    };
    const sbomBytes = encoder.encode(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, ...sbom }),
    );
    await manifest("demo/multi", sha256(sbomBytes), sbom);
    await manifest("demo/multi", "rejectme", {
      config: await config("demo/multi", 5),
      layers: [await blob("demo/multi", randomBytes(700), LAYER)],
      annotations: { "org.example.policy": "reject" },
    });

    // Atomic signatures live only in the atomic-signatures plugin's table.
    await blob("demo/app", SIGNED_CONFIG, CONFIG);
    const { response, text } = await putManifest(base, "demo/app", "signed", SIGNED_MANIFEST);
    assertEquals(response.status, 201, text);
    for (const [n, content] of [SIGNED, RAW_SIGNATURE.toBase64()].entries()) {
      const put = await fetch(`${base}/extensions/v2/demo/app/signatures/${SIGNED_DIGEST}`, {
        method: "PUT",
        body: JSON.stringify({
          schemaVersion: 2,
          type: "atomic",
          name: `${SIGNED_DIGEST}@${String(n).repeat(32)}`,
          content,
        }),
      });
      assertEquals(put.status, 201, await put.text());
    }

    const open = await fetch(`${base}/v2/demo/app/blobs/uploads/`, { method: "POST" });
    await open.body?.cancel();
    return {
      dir,
      inventory: await inventory(base),
      image: image.digest,
      big: bigLayer.digest,
      ownLayer: own.digest,
    };
  } finally {
    await server.close({ keepData: true });
  }
}

const CONFIG = "application/vnd.oci.image.config.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";

/**
 * Everything a registry serves, walked from the catalog: `repo:tag` → digest, `repo@digest` →
 * content type, `repo/blob/digest` → sha256 of the bytes served, `repo@digest→referrer` →
 * artifact type, `repo@digest signatures` → the atomic signatures answer, byte for byte (when
 * there are any). Manifest bytes are checked against the digest they are served under.
 */
async function inventory(base: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const catalog = await (await fetch(`${base}/v2/_catalog?n=1000`)).json();
  for (const repo of catalog.repositories as string[]) {
    const seen = new Set<string>();
    const visit = async (reference: string) => {
      const response = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {
        headers: { Accept: ACCEPT },
      });
      const bytes = await response.bytes();
      assertEquals(response.status, 200, `${repo}:${reference}`);
      const digest = sha256(bytes);
      if (reference.startsWith("sha256:")) assertEquals(digest, reference);
      else out[`${repo}:${reference}`] = digest;
      if (seen.has(digest)) return;
      seen.add(digest);
      out[`${repo}@${digest}`] = response.headers.get("content-type") ?? "";
      const signatures = await fetch(`${base}/extensions/v2/${repo}/signatures/${digest}`);
      const listed = await signatures.text();
      assertEquals(signatures.status, 200, listed);
      if (JSON.parse(listed).signatures.length > 0) out[`${repo}@${digest} signatures`] = listed;
      const manifest = JSON.parse(new TextDecoder().decode(bytes));
      for (const blob of [manifest.config, ...(manifest.layers ?? [])].filter(Boolean)) {
        const got = await fetch(`${base}/v2/${repo}/blobs/${blob.digest}`);
        out[`${repo}/blob/${blob.digest}`] = sha256(await got.bytes());
      }
      for (const child of manifest.manifests ?? []) await visit(child.digest);
      const referrers = await (await fetch(`${base}/v2/${repo}/referrers/${digest}`)).json();
      for (const referrer of referrers.manifests) {
        out[`${repo}@${digest}→${referrer.digest}`] = referrer.artifactType ?? "";
        await visit(referrer.digest);
      }
    };
    const tags = (await (await fetch(`${base}/v2/${repo}/tags/list`)).json()).tags ?? [];
    for (const tag of tags) await visit(tag);
  }
  return out;
}

async function writeConfig(path: string, config: Record<string, unknown>): Promise<string> {
  await Deno.writeTextFile(path, stringify(config));
  return path;
}

async function readReport(path: string): Promise<MigrationReport> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** A plugin (in `dir`) that refuses manifests annotated `org.example.policy: reject`. */
async function writeRefusingPlugin(dir: string): Promise<string> {
  const path = join(dir, "refuse_plugin.ts");
  await Deno.writeTextFile(
    path,
    `import { API_VERSION, RegistryError } from "${API}";
export default {
  name: "refuse-test",
  apiVersion: API_VERSION,
  setup(ctx) {
    ctx.on("manifest.beforePush", (event) => {
      if (event.manifest.annotations?.["org.example.policy"] === "reject") {
        throw new RegistryError("DENIED", "refused by the test policy");
      }
    });
  },
};
`,
  );
  return path;
}

Deno.test("wharf migrate: one-line errors, corrupt blob and refused manifest reported, dry run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-local-" });
  try {
    const source = await buildSource(join(dir, "source"));
    const from = await writeConfig(join(dir, "from.yaml"), { data: source.dir });

    // Bad config, same store, missing source, unreachable target: one line, exit 1.
    const bad = await writeConfig(join(dir, "bad.yaml"), { data: dir, storge: {} });
    const unreachable = await writeConfig(join(dir, "unreachable.yaml"), {
      data: join(dir, "unreachable"),
      metadata: { driver: "postgres", url: "postgres://postgres@127.0.0.1:1/wharf" },
    });
    const missing = await writeConfig(join(dir, "missing.yaml"), { data: join(dir, "nothing") });
    for (
      const [to, message, source_] of [
        [bad, /^config .*bad\.yaml: \(top level\): Unrecognized key: "storge"$/, from],
        [
          from,
          /^error: source and target are the same metadata store \(sqlite .*\): nothing to migrate$/,
          from,
        ],
        [unreachable, /^error: target: metadata database .*$/, from],
        [unreachable, /^error: source blob store: no directory .*nothing\/blobs$/, missing],
      ] as const
    ) {
      const result = await runWharf(["migrate", "--from", source_, "--to", to]);
      assertEquals(result.code, 1, result.stderr);
      assertEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
      assertMatch(result.stderr.trim(), message);
    }

    // A dry run of one repository writes nothing.
    const dryTarget = join(dir, "dry");
    const dry = await runWharf([
      "migrate",
      "--from",
      from,
      "--to",
      await writeConfig(join(dir, "dry.yaml"), { data: dryTarget }),
      "--dry-run",
      "--repositories",
      "demo/m*",
      "--report",
      join(dir, "dry.json"),
    ]);
    assertEquals(dry.code, 0, dry.stderr);
    const dryReport = await readReport(join(dir, "dry.json"));
    assertEquals(dryReport.dryRun, true);
    assertEquals(dryReport.repositories, 1);
    assertEquals(dryReport.manifests.copied, 5);
    assertEquals(dryReport.plugins.rows.copied, 0); // the signatures are in demo/app
    assertEquals([...Deno.readDirSync(join(dryTarget, "blobs"))], []);

    // One corrupt layer in the source; a target plugin refusing one manifest.
    const hex = source.ownLayer.slice("sha256:".length);
    const layerPath = join(source.dir, "blobs", "sha256", hex.slice(0, 2), hex);
    const bytes = await Deno.readFile(layerPath);
    bytes[100] ^= 0xff;
    await Deno.writeFile(layerPath, bytes);
    const target = join(dir, "target");
    const to = await writeConfig(join(dir, "to.yaml"), {
      data: target,
      plugins: { external: [await writeRefusingPlugin(dir)] },
    });
    const result = await runWharf([
      "migrate",
      "--from",
      from,
      "--to",
      to,
      "--report",
      join(dir, "r.json"),
    ]);
    assertEquals(result.code, 2, result.stderr);
    const report = await readReport(join(dir, "r.json"));
    assertEquals(report.blobs, { copied: BLOBS - 1, present: 0, failed: 1, links: 2 });
    assertEquals(report.manifests, { copied: MANIFESTS - 2, present: 0, failed: 2 });
    assertEquals(report.tags, { copied: TAGS - 3, present: 0, failed: 3 });
    assertEquals(report.uploadsNotMigrated, 1);
    assertEquals(report.plugins.rows, { copied: PLUGIN_ROWS, present: 0, failed: 0 });
    const failures = report.failures.map((f) => `${f.kind} ${f.repository} ${f.tag ?? f.digest}`);
    assertEquals(failures.sort(), [
      `blob demo/app ${source.ownLayer}`,
      `manifest demo/app ${source.image}`,
      `manifest demo/multi ${source.inventory["demo/multi:rejectme"]}`,
      "tag demo/app latest",
      "tag demo/app v1",
      "tag demo/multi rejectme",
    ]);
    assertMatch(result.stdout, /source bytes do not match the digest \(they hash to sha256:/);
    assertMatch(result.stdout, /refused by the target: DENIED: refused by the test policy/);
    assertMatch(result.stdout, /^blobs: +14 copied, 0 already present, 1 failed/m);
    // Nothing half-written: the corrupt layer is nowhere in the target, no session is left.
    assertEquals(
      await Deno.stat(join(target, "blobs", "sha256", hex.slice(0, 2), hex)).catch(() => null),
      null,
    );
    assertEquals([...Deno.readDirSync(join(target, "uploads"))], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const skip = postgresUnavailableReason() ?? cephMissing();
if (skip) console.warn(`migrate_test: PostgreSQL + S3 case skipped — ${skip}`);

Deno.test({
  name: "wharf migrate: directory + SQLite → PostgreSQL + S3 (killed, resumed) → and back",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-" });
    const postgres = await startPostgres();
    const rgw = await startCephRgw();
    try {
      const source = await buildSource(join(dir, "source"));
      const signed = JSON.parse(source.inventory[`demo/app@${SIGNED_DIGEST} signatures`]);
      assertEquals(Uint8Array.fromBase64(signed.signatures[1].content), RAW_SIGNATURE);
      const from = await writeConfig(join(dir, "from.yaml"), { data: source.dir });
      const bucket = await rgw.bucket();
      const cloud = {
        data: join(dir, "cloud"),
        storage: s3StorageConfig(bucket, { partSize: "5MiB" }),
        metadata: { driver: "postgres", url: postgres.url },
      };
      const to = await writeConfig(join(dir, "cloud.yaml"), cloud);
      const s3 = new S3BlobStore({ ...bucket, prefix: "registry" });
      const metadata = await PostgresMetadataStore.open(postgres.url);
      try {
        // Killed while the 32 MiB layer is on its way (after its first 4 MiB chunk).
        const killed = await migrateUntil(
          ["--from", from, "--to", to, "--chunk-size", "4MiB", "--jobs", "2"],
          new RegExp(`^  ${source.big} 4\\.0 MiB of 32\\.0 MiB$`, "m"),
        );
        assertOk(killed.matched, `the run ended before the large blob:\n${killed.stderr}`);
        // No half-written blob is visible: what is stored has its digest, the layer is not there.
        const stored = [];
        for await (const blob of s3.listBlobs()) {
          assertEquals(await s3.rehash(blob.digest), blob.digest);
          stored.push(blob.digest);
        }
        assertOk(!stored.includes(source.big as Digest), "partial blob visible");
        assertEquals(await metadata.linkedBlobSize("demo/app", source.big as Digest), null);

        // The second run finishes, resuming the layer from its last whole chunk.
        const resumed = await runWharf([
          "migrate",
          "--from",
          from,
          "--to",
          to,
          "--chunk-size",
          "4MiB",
          "--report",
          join(dir, "r1.json"),
        ]);
        assertEquals(resumed.code, 0, resumed.stderr);
        assertMatch(resumed.stderr, new RegExp(`^resuming ${source.big} at \\d+\\.0 MiB$`, "m"));
        const r1 = await readReport(join(dir, "r1.json"));
        assertEquals(r1.failures, []);
        assertEquals(r1.blobs.copied + r1.blobs.present, BLOBS);
        assertEquals(r1.manifests.copied + r1.manifests.present, MANIFESTS);
        assertEquals(r1.tags.copied + r1.tags.present, TAGS);
        assertOk(r1.bytesCopied < BIG, `resumed, yet sent ${r1.bytesCopied} bytes`);
        assertEquals(r1.uploadsNotMigrated, 1);
        assertEquals(r1.plugins.rows, { copied: PLUGIN_ROWS, present: 0, failed: 0 });
        assertMatch(
          resumed.stdout,
          /^plugin rows: +4 copied, 0 already present, 0 failed \(atomic-signatures: signatures, artifact index\)$/m,
        );
        assertEquals(await s3.listUploads(), []);

        // Served from PostgreSQL + S3: every tag, manifest, blob and referrer as the source had.
        const served = await startRegistry({ dataDir: cloud.data, config: cloud });
        try {
          assertEquals(await inventory(served.url), source.inventory);
          // The cosign plugin indexed the .sig tag as if it had been pushed.
          const artifacts = await (await fetch(
            `${served.url}/wharf/v1/demo/app/artifacts/${source.image}`,
          )).json();
          assertEquals(artifacts.artifacts.map((a: { kind: string }) => a.kind), ["signature"]);
        } finally {
          await served.close({ keepData: true });
        }

        // Again: everything is already there, nothing is copied.
        const again = await runWharf([
          "migrate",
          "--from",
          from,
          "--to",
          to,
          "--report",
          join(dir, "r2.json"),
        ]);
        assertEquals(again.code, 0, again.stderr);
        const r2 = await readReport(join(dir, "r2.json"));
        assertEquals(r2.blobs, { copied: 0, present: BLOBS, failed: 0, links: 0 });
        assertEquals(r2.manifests, { copied: 0, present: MANIFESTS, failed: 0 });
        assertEquals(r2.tags, { copied: 0, present: TAGS, failed: 0 });
        assertEquals(r2.bytesCopied, 0);
        assertEquals(r2.plugins.rows, { copied: 0, present: PLUGIN_ROWS, failed: 0 });
      } finally {
        s3.close();
        await metadata.close();
      }

      // And back to a fresh directory + SQLite.
      const back = await writeConfig(join(dir, "back.yaml"), { data: join(dir, "back") });
      const returned = await runWharf([
        "migrate",
        "--from",
        to,
        "--to",
        back,
        "--report",
        join(dir, "r3.json"),
      ]);
      assertEquals(returned.code, 0, returned.stderr);
      const r3 = await readReport(join(dir, "r3.json"));
      assertEquals(r3.blobs, { copied: BLOBS, present: 0, failed: 0, links: 2 });
      assertEquals(r3.manifests.copied, MANIFESTS);
      assertEquals(r3.tags.copied, TAGS);
      assertEquals(r3.plugins.rows, { copied: PLUGIN_ROWS, present: 0, failed: 0 });
      const local = await startRegistry({ dataDir: join(dir, "back") });
      try {
        assertEquals(await inventory(local.url), source.inventory);
      } finally {
        await local.close({ keepData: true });
      }
    } finally {
      await rgw.stop();
      await postgres.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Runs `wharf migrate` with `args` and SIGKILLs it as soon as its stderr matches `pattern`;
 * `matched` is false when it ended on its own first.
 */
async function migrateUntil(
  args: string[],
  pattern: RegExp,
): Promise<{ matched: boolean; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "migrate", ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  let matched = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    if (!matched && pattern.test(stderr)) {
      matched = true;
      child.kill("SIGKILL");
    }
  }
  await child.status;
  return { matched, stderr };
}
