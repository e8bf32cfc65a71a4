/**
 * `migrate()` between two real single-node registries (filesystem blob store + SQLite) in
 * temp directories: what moves, what a second run skips, resumed and corrupt blobs, dry runs;
 * and atomic signatures (a plugin's carried table) between real in-process servers. The CLI and
 * PostgreSQL + S3 are covered by tests/migrate_test.ts.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "../../tests/assert.ts";
import { CONFIG, DIGEST, MANIFEST, SIGNED } from "../../plugins/atomic-signatures/_fixtures.ts";
import { parseConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { createLogger } from "../log/logger.ts";
import { SqlitePluginStore } from "../plugins/sqlite_database.ts";
import { startServer } from "../server.ts";
import { type Digest, digestOf } from "../oci/digest.ts";
import { SqliteMetadataStore } from "../metadata/sqlite.ts";
import { FilesystemBlobStore } from "../storage/filesystem.ts";
import { createRegistry, type Registry } from "../registry/registry.ts";
import { migrationUploadId } from "./blob_copy.ts";
import { migrate, type MigrateOptions } from "./migrate.ts";
import { formatReport, type TableCounts } from "./report.ts";
import { openSource, openTarget } from "./stores.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const encoder = new TextEncoder();

interface Side {
  registry: Registry;
  root: string;
  close(): Promise<void>;
}

async function openSide(root: string): Promise<Side> {
  const store = await FilesystemBlobStore.open(root);
  const metadata = SqliteMetadataStore.open(join(root, "wharf.db"));
  return {
    registry: createRegistry(store, metadata, { automaticMount: true, deleteEnabled: true }),
    root,
    close: () => metadata.close(),
  };
}

function bytes(length: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function stream(data: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(data);
      controller.close();
    },
  });
}

async function pushBlob(registry: Registry, repository: string, data: Uint8Array) {
  const digest = digestOf(data);
  await registry.uploads.putWhole(repository, digest, stream(data));
  return { mediaType: "application/octet-stream", digest, size: data.length };
}

async function pushManifest(
  registry: Registry,
  repository: string,
  body: Record<string, unknown>,
  tag?: string,
): Promise<Digest> {
  const content = encoder.encode(JSON.stringify(body));
  const digest = digestOf(content);
  await registry.manifests.put(
    repository,
    tag ? { kind: "tag", tag } : { kind: "digest", digest },
    content,
    body.mediaType as string,
  );
  return digest;
}

/** Two repositories sharing a layer; an image, a two-platform index, a signature tag. */
async function fill(registry: Registry): Promise<{ layer: Digest; big: Digest }> {
  const shared = bytes(3000, 1);
  const big = bytes(300_000, 2);
  let images = 0;
  const image = async (repository: string, layers: Uint8Array[], tag?: string) => {
    const config = await pushBlob(registry, repository, encoder.encode(`{"image":${++images}}`));
    const descriptors = [];
    for (const layer of layers) descriptors.push(await pushBlob(registry, repository, layer));
    return await pushManifest(registry, repository, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { ...config, mediaType: "application/vnd.oci.image.config.v1+json" },
      layers: descriptors,
    }, tag);
  };
  const app = await image("team/app", [shared, big], "v1");
  await pushManifest(registry, "team/app", {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { ...await pushBlob(registry, "team/app", encoder.encode("{}")) },
    layers: [await pushBlob(registry, "team/app", encoder.encode("signature payload"))],
  }, `${app.replace(":", "-")}.sig`);
  const amd = await image("team/base", [shared, bytes(100, 3)]);
  const arm = await image("team/base", [shared, bytes(100, 4)]);
  await pushManifest(registry, "team/base", {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [amd, arm].map((digest) => ({ mediaType: OCI_MANIFEST, digest, size: 0 })),
  }, "multi");
  return { layer: digestOf(shared), big: digestOf(big) };
}

async function withSides(fn: (source: Side, target: Side) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-unit-" });
  const source = await openSide(join(dir, "source"));
  const target = await openSide(join(dir, "target"));
  try {
    await fn(source, target);
  } finally {
    await source.close();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const from = (side: Side) => ({ store: side.registry.store, metadata: side.registry.metadata });

Deno.test("migrate copies everything once, a second run finds it all present", async () => {
  await withSides(async (source, target) => {
    await fill(source.registry);
    const first = await migrate(from(source), target, { chunkSize: 64 << 10 });
    assertEquals(first.failures, []);
    assertEquals(first.repositories, 2);
    assertEquals(first.blobs.copied, 9);
    assertEquals(first.blobs.links, 1); // the shared layer, linked into the second repository
    assertEquals(first.manifests, { copied: 5, present: 0, failed: 0 });
    assertEquals(first.tags, { copied: 3, present: 0, failed: 0 });
    for (const repository of ["team/app", "team/base"]) {
      const a = await source.registry.metadata.snapshot(repository);
      const b = await target.registry.metadata.snapshot(repository);
      const tags = (s: typeof a) => s.tags.map((t) => `${t.name}=${t.digest}`).sort();
      assertEquals(tags(b), tags(a));
      assertEquals(b.links.map((l) => l.digest).sort(), a.links.map((l) => l.digest).sort());
      for (const manifest of a.manifests) {
        const copy = await target.registry.metadata.getManifest(repository, manifest.digest);
        assertEquals(
          copy?.content,
          (await source.registry.metadata.getManifest(
            repository,
            manifest.digest,
          ))?.content,
        );
      }
    }
    for await (const blob of target.registry.store.listBlobs()) {
      assertEquals(await target.registry.store.rehash(blob.digest), blob.digest);
    }

    const second = await migrate(from(source), target);
    assertEquals(second.failures, []);
    assertEquals(second.blobs, { copied: 0, present: 9, failed: 0, links: 0 });
    assertEquals(second.bytesCopied, 0);
    assertEquals(second.manifests, { copied: 0, present: 5, failed: 0 });
    assertEquals(second.tags, { copied: 0, present: 3, failed: 0 });
  });
});

Deno.test("migrate resumes a blob an interrupted run left half sent", async () => {
  await withSides(async (source, target) => {
    const { big } = await fill(source.registry);
    // What a killed run leaves: the derived session holding the first 100 000 bytes.
    const id = migrationUploadId(big);
    await target.registry.store.startUpload(id);
    await target.registry.metadata.createUpload(id, "team/app");
    const head = await source.registry.store.read(big, { start: 0, end: 99_999 });
    await target.registry.store.appendUpload(id, head);
    const lines: string[] = [];
    const report = await migrate(from(source), target, {
      chunkSize: 64 << 10,
      onProgress: (line) => lines.push(line),
    });
    assertEquals(report.failures, []);
    assertOk(lines.some((l) => l === `resuming ${big} at 97.7 KiB`), lines.join("\n"));
    const total = (await source.registry.metadata.snapshot("team/app")).links
      .concat((await source.registry.metadata.snapshot("team/base")).links)
      .filter((l, i, all) => all.findIndex((o) => o.digest === l.digest) === i)
      .reduce((sum, l) => sum + l.size, 0);
    assertEquals(report.bytesCopied, total - 100_000);
    assertEquals(await target.registry.store.rehash(big), big);
    assertEquals(await target.registry.store.listUploads(), []);
  });
});

Deno.test("migrate starts over when a left session holds other bytes", async () => {
  await withSides(async (source, target) => {
    const { big } = await fill(source.registry);
    const id = migrationUploadId(big);
    await target.registry.store.startUpload(id);
    await target.registry.metadata.createUpload(id, "team/app");
    await target.registry.store.appendUpload(id, stream(bytes(1000, 9)));
    const report = await migrate(from(source), target, { chunkSize: 64 << 10 });
    assertEquals(report.failures, []);
    assertEquals(await target.registry.store.rehash(big), big);
  });
});

Deno.test("migrate reports a corrupt source blob and what needs it, copies the rest", async () => {
  await withSides(async (source, target) => {
    const { big } = await fill(source.registry);
    const hex = big.slice("sha256:".length);
    const path = join(source.root, "blobs", "sha256", hex.slice(0, 2), hex);
    const data = await Deno.readFile(path);
    data[1234] ^= 0xff;
    await Deno.writeFile(path, data);

    const report = await migrate(from(source), target, { chunkSize: 64 << 10 });
    assertEquals(report.blobs.failed, 1);
    assertEquals(report.blobs.copied, 8);
    const blobFailure = report.failures.find((f) => f.kind === "blob");
    assertEquals(blobFailure?.digest, big);
    assertOk(blobFailure?.reason.startsWith("source bytes do not match the digest"));
    // The image using it and its tag fail; its signature (which does not need the layer) and
    // the other repository are copied.
    assertEquals(report.manifests, { copied: 4, present: 0, failed: 1 });
    assertEquals(report.tags, { copied: 2, present: 0, failed: 1 });
    assertEquals(report.failures.find((f) => f.kind === "tag")?.tag, "v1");
    assertEquals(await target.registry.store.stat(big), null);
    assertEquals(await target.registry.store.listUploads(), []);
  });
});

Deno.test("migrate --dry-run counts and writes nothing", async () => {
  await withSides(async (source, target) => {
    await fill(source.registry);
    const report = await migrate(from(source), target, {
      dryRun: true,
      repositories: (name) => name === "team/base",
    });
    assertEquals(report.repositories, 1);
    assertEquals(report.blobs.copied, 5);
    assertEquals(report.manifests.copied, 3);
    assertEquals(report.tags.copied, 1);
    assertEquals(await target.registry.metadata.allRepositories(), []);
    const blobs = [];
    for await (const blob of target.registry.store.listBlobs()) blobs.push(blob);
    assertEquals(blobs, []);
  });
});

// Plugin data: atomic signatures exist only in the atomic-signatures plugin's table.

const quiet = createLogger({ level: "error", write: () => {} });

/** A single-node config on `data`, served on a free loopback port. */
function nodeConfig(data: string, plugins: Record<string, unknown> = {}): Config {
  return parseConfig({ data, listen: "127.0.0.1:0", log: { access: false }, plugins }, {}, data);
}

/** Serves `config` with a real server while `fn` runs against its URL. */
async function serving<T>(config: Config, fn: (url: string) => Promise<T>): Promise<T> {
  const server = await startServer(config, quiet);
  try {
    return await fn(server.url);
  } finally {
    await server.shutdown();
  }
}

/** Migrates between the stores of two configs, as `wharf migrate` opens them. */
async function migrateConfigs(from: Config, to: Config, options: MigrateOptions = {}) {
  const source = await openSource(from);
  try {
    const target = await openTarget(to, quiet);
    try {
      return await migrate(source, target, options);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** A signature that the plugin stores without reading it: every byte value, NUL included. */
const RAW_SIGNATURE = new Uint8Array([0xa3, 0x03, ...Array.from({ length: 256 }, (_, i) => i)]);
const SIGNED_REPOS = ["team/signed", "other/signed"];

/**
 * Pushes the atomic-signatures fixture image into both repositories, with two signatures
 * each through the extension API (the real one of `_fixtures.ts` and {@link RAW_SIGNATURE}).
 */
async function pushSignatures(url: string): Promise<void> {
  for (const repository of SIGNED_REPOS) {
    await putBlob(url, repository, CONFIG);
    const manifest = await fetch(`${url}/v2/${repository}/manifests/1.0`, {
      method: "PUT",
      headers: { "Content-Type": OCI_MANIFEST },
      body: MANIFEST,
    });
    assertEquals(manifest.status, 201, await manifest.text());
    for (const [n, content] of [SIGNED, RAW_SIGNATURE.toBase64()].entries()) {
      const put = await fetch(signaturesUrl(url, repository), {
        method: "PUT",
        body: JSON.stringify({
          schemaVersion: 2,
          type: "atomic",
          name: `${DIGEST}@${String(n).repeat(32)}`,
          content,
        }),
      });
      assertEquals(put.status, 201, await put.text());
    }
  }
}

async function putBlob(url: string, repository: string, data: Uint8Array<ArrayBuffer>) {
  const response = await fetch(
    `${url}/v2/${repository}/blobs/uploads/?digest=${digestOf(data)}`,
    { method: "POST", body: data },
  );
  assertEquals(response.status, 201, await response.text());
}

function signaturesUrl(url: string, repository: string): string {
  return `${url}/extensions/v2/${repository}/signatures/${DIGEST}`;
}

/** What a server answers for the signatures of each repository, byte for byte. */
async function servedSignatures(config: Config): Promise<Record<string, string>> {
  return await serving(config, async (url) => {
    const out: Record<string, string> = {};
    for (const repository of SIGNED_REPOS) {
      const response = await fetch(signaturesUrl(url, repository));
      out[repository] = `${response.status} ${await response.text()}`;
    }
    return out;
  });
}

/** The atomic-signatures records of the artifact index, as served for the fixture image. */
async function indexedSignatures(config: Config, repository: string): Promise<string[]> {
  return await serving(config, async (url) => {
    const response = await fetch(`${url}/wharf/v1/${repository}/artifacts/${DIGEST}`);
    const body = await response.json();
    return (body.artifacts as { plugin: string; detail: { name: string } }[])
      .filter((a) => a.plugin === "atomic-signatures").map((a) => a.detail.name).sort();
  });
}

const signaturesTable = (counts: Partial<TableCounts>) => ({
  plugin: "atomic-signatures",
  table: "signatures",
  copied: 0,
  present: 0,
  failed: 0,
  ...counts,
});
const indexRecords = (counts: Partial<TableCounts>) => ({
  ...signaturesTable(counts),
  table: "artifact index",
});

Deno.test("migrate carries atomic signatures to the target and back, once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-signatures-" });
  try {
    const source = nodeConfig(join(dir, "source"));
    await serving(source, pushSignatures);
    const expected = await servedSignatures(source);
    for (const repository of SIGNED_REPOS) {
      const listed = JSON.parse(expected[repository].slice(4)).signatures;
      assertEquals(listed.length, 2);
      assertEquals(Uint8Array.fromBase64(listed[1].content), RAW_SIGNATURE);
    }

    // A dry run counts the rows and leaves the target's table empty.
    const dry = nodeConfig(join(dir, "dry"));
    const planned = await migrateConfigs(source, dry, { dryRun: true });
    assertEquals(planned.plugins.rows, { copied: 8, present: 0, failed: 0 });
    assertEquals(planned.manifests.copied, 2);
    const dryTable = new SqlitePluginStore(join(dir, "dry", "plugins.db"));
    try {
      const rows = await dryTable.database("x").all(
        "SELECT count(*) AS n FROM p_atomic_signatures_signatures",
      );
      assertEquals(rows, [{ n: 0 }]);
    } finally {
      await dryTable.close();
    }

    const target = nodeConfig(join(dir, "target"));
    const first = await migrateConfigs(source, target);
    assertEquals(first.failures, []);
    assertEquals(first.plugins.tables, [
      signaturesTable({ copied: 4 }),
      indexRecords({ copied: 4 }),
    ]);
    assertEquals(first.plugins.notLoaded, []);
    assertEquals(await servedSignatures(target), expected);
    assertEquals(
      await indexedSignatures(target, "team/signed"),
      [`${DIGEST}@${"0".repeat(32)}`, `${DIGEST}@${"1".repeat(32)}`],
    );

    // A second run finds every row there.
    const again = await migrateConfigs(source, target);
    assertEquals(again.failures, []);
    assertEquals(again.plugins.rows, { copied: 0, present: 8, failed: 0 });

    // And back to a fresh node: still the same answer, byte for byte.
    const back = nodeConfig(join(dir, "back"));
    const returned = await migrateConfigs(target, back);
    assertEquals(returned.plugins.rows, { copied: 8, present: 0, failed: 0 });
    assertEquals(await servedSignatures(back), expected);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("migrate carries only the selected repositories' rows; a plugin the target lacks is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-migrate-signatures-" });
  try {
    const source = nodeConfig(join(dir, "source"));
    await serving(source, pushSignatures);
    const expected = await servedSignatures(source);

    const some = nodeConfig(join(dir, "some"));
    const selected = await migrateConfigs(source, some, {
      repositories: (name) => name.startsWith("other/"),
    });
    assertEquals(selected.failures, []);
    assertEquals(selected.plugins.tables, [
      signaturesTable({ copied: 2 }),
      indexRecords({ copied: 2 }),
    ]);
    const served = await servedSignatures(some);
    assertEquals(served["other/signed"], expected["other/signed"]);
    assertMatch(served["team/signed"], /^404 /);

    const without = nodeConfig(join(dir, "without"), { disabled: ["atomic-signatures"] });
    const report = await migrateConfigs(source, without);
    assertEquals(report.failures, []);
    assertEquals(report.manifests.copied, 2);
    assertEquals(report.plugins.tables, []);
    assertEquals(report.plugins.notLoaded, ["atomic-signatures"]);
    assertMatch(
      formatReport(report),
      /^plugins: +atomic-signatures has tables in the source but is not loaded by the target: none of its data was carried$/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
