/**
 * Plugins on two `wharf serve` processes sharing one PostgreSQL database and one Ceph RGW bucket
 * (both real, started by the test): what the plugins index through process A — a cosign
 * signature, an attestation, an SBOM, an atomic signature, an audit row of an external plugin —
 * process B lists, enforces and searches; a delete through B clears the index for A. Skipped,
 * saying why, when PostgreSQL or Ceph is not installed.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "./ceph_rgw.ts";
import { startRegistry, type TestRegistry, writerAndReaderAuth } from "./harness.ts";
import { postgresUnavailableReason, startPostgres } from "./postgres.ts";
import { attestAndSbom, clientFor, makeKeys, pushTestImage, signImage } from "./sync_fixtures.ts";
import { CONFIG, DIGEST, MANIFEST, SIGNED } from "../plugins/atomic-signatures/_fixtures.ts";

const skip = postgresUnavailableReason() ?? cephMissing();
if (skip) console.warn(`scaleout_plugins_test: skipped — ${skip}`);

const ALICE = `Basic ${btoa("alice:alice-pw")}`;
const READER = `Basic ${btoa("reader:reader-pw")}`;
const EXAMPLE = new URL("../examples/plugins/immutable_tags.ts", import.meta.url).pathname;

Deno.test({
  name: "scale-out: plugin tables and the artifact index are shared by every process",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wharf-scaleout-plugins-" });
    const postgres = await startPostgres();
    const rgw = await startCephRgw();
    const processes: TestRegistry[] = [];
    try {
      const bucket = await rgw.bucket("wharf");
      const keys = await makeKeys(dir);
      const trusted = { keys: [{ name: "release", key: keys.publicPath }] };
      const config = {
        storage: s3StorageConfig(bucket),
        metadata: { driver: "postgres", url: postgres.url },
        auth: await writerAndReaderAuth(dir),
        plugins: {
          external: [EXAMPLE],
          "immutable-tags": { pattern: "^v\\d+$" },
          cosign: trusted,
          attestations: trusted,
          policy: {
            rules: [{ name: "signed-only", repositories: ["prod/**"], signedBy: ["release"] }],
          },
        },
      };
      // Both start at once: their plugin migrations race on the empty database.
      processes.push(
        ...await Promise.all(
          ["a", "b"].map((name) => startRegistry({ dataDir: join(dir, name), config })),
        ),
      );
      const [a, b] = processes;
      const get = (registry: TestRegistry, path: string, auth = READER) =>
        fetch(`${registry.url}${path}`, { headers: { Authorization: auth } });
      const json = async (registry: TestRegistry, path: string) => {
        const response = await get(registry, path);
        assertEquals(response.status, 200, path);
        return await response.json();
      };

      // Through A: an image, its cosign signature, attestation and SBOM; an unsigned image.
      const alice = clientFor(a.host, { username: "alice", password: "alice-pw" });
      const image = await pushTestImage(alice, "prod/app", "v1");
      const signature = await signImage(alice, "prod/app", image, keys.key, `${a.host}/prod/app`);
      await attestAndSbom(alice, "prod/app", image, keys.key, `${a.host}/prod/app`);
      const unsigned = await pushTestImage(alice, "prod/app", "v2");

      // B lists what A's plugins indexed, with A's verdicts.
      const listed = await json(b, `/wharf/v1/prod/app/artifacts/${image.digest}`);
      const byKind = (kind: string) =>
        listed.artifacts.filter((r: { kind: string }) => r.kind === kind);
      assertEquals(byKind("signature").length, 1);
      assertEquals(byKind("signature")[0].status, "verified");
      assertEquals(byKind("signature")[0].digest, signature.digest);
      assertEquals(byKind("signature")[0].detail.keys, ["release"]);
      assertEquals(byKind("attestation").map((r: { status: string }) => r.status), ["verified"]);
      assertEquals(byKind("sbom").map((r: { plugin: string }) => r.plugin), ["sbom"]);

      // B's policy reads the shared index: the signed image passes, the unsigned one does not.
      const pull = async (registry: TestRegistry, reference: string) => {
        const response = await get(registry, `/v2/prod/app/manifests/${reference}`);
        await response.body?.cancel();
        return response.status;
      };
      assertEquals(await pull(b, "v1"), 200);
      assertEquals(await pull(b, "v2"), 403);
      assertEquals(await pull(b, unsigned.digest), 403);

      // B searches the SBOM plugin's tables (any case) and names the tag A saw pushed.
      const found = await json(b, "/wharf/v1/plugins/sbom/packages?name=BusyBox");
      assertEquals(found.images.map((i: { subject: string }) => i.subject), [image.digest]);
      assertEquals(found.images[0].tags, ["v1"]);
      assertEquals(found.images[0].packages[0].version, "1.36");

      // An atomic signature stored through A (a bytea row) is served by B.
      await alice.pushBlob("lab/atomic", CONFIG);
      await alice.putManifest(
        "lab/atomic",
        "1.0",
        MANIFEST,
        "application/vnd.oci.image.manifest.v1+json",
      );
      const stored = {
        schemaVersion: 2,
        name: `${DIGEST}@${"0f".repeat(16)}`,
        type: "atomic",
        content: SIGNED,
      };
      const put = await fetch(`${a.url}/extensions/v2/lab/atomic/signatures/${DIGEST}`, {
        method: "PUT",
        headers: { Authorization: ALICE, "Content-Type": "application/json" },
        body: JSON.stringify(stored),
      });
      assertEquals(put.status, 201, await put.text());
      assertEquals(await json(b, `/extensions/v2/lab/atomic/signatures/${DIGEST}`), {
        signatures: [stored],
      });
      const atomic = await json(b, `/wharf/v1/lab/atomic/artifacts/${DIGEST}`);
      assertEquals(atomic.artifacts.map((r: { plugin: string }) => r.plugin), [
        "atomic-signatures",
      ]);

      // The external example plugin (a per-dialect migration) wrote its audit through A.
      const audit = await json(b, "/wharf/v1/plugins/immutable-tags/audit?repository=prod/app");
      const tags = audit.pushes.map((p: { tag: string | null }) => p.tag);
      assertEquals(tags.filter((t: string | null) => t === "v1" || t === "v2"), ["v1", "v2"]);

      // Deleting the signature through B drops it from the index A reads; A's policy follows.
      const deleted = await fetch(`${b.url}/v2/prod/app/manifests/${signature.digest}`, {
        method: "DELETE",
        headers: { Authorization: ALICE },
      });
      await deleted.body?.cancel();
      assertEquals(deleted.status, 202);
      const after = await json(a, `/wharf/v1/prod/app/artifacts/${image.digest}`);
      assertEquals(after.artifacts.filter((r: { kind: string }) => r.kind === "signature"), []);
      assertEquals(await pull(a, "v1"), 403);
      for (const registry of [a, b]) {
        assertOk(!registry.logs().includes('"level":"error"'), registry.logs());
      }
    } finally {
      for (const process of processes) await process.close({ keepData: true });
      await rgw.stop();
      await postgres.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
