/**
 * The signatures extension API in a real server, driven with the exact requests
 * containers/image makes (`docker/docker_image_dest.go` `putSignaturesToAPIExtension`: GET the
 * list, then one PUT per new signature; `docker_image_src.go` `getSignaturesFromAPIExtension`).
 */
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { startRegistry } from "../../tests/harness.ts";
import { errorCode, pushBlob, pushImage, putManifest } from "../../tests/oci_client.ts";
import { CONFIG, DIGEST, MANIFEST, SIGNED } from "./_fixtures.ts";

const REPO = "demo/app";

/** The object containers/image PUTs: `extensionSignature` with a random 32-hex suffix. */
function signature(content = SIGNED) {
  const random = crypto.getRandomValues(new Uint8Array(16));
  const suffix = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  return { schemaVersion: 2, name: `${DIGEST}@${suffix}`, type: "atomic", content };
}

async function pushFixture(base: string, repo = REPO) {
  await pushBlob(base, repo, CONFIG);
  const { response, text } = await putManifest(base, repo, "1.0", MANIFEST);
  assertEquals(response.status, 201, text);
}

Deno.test("atomic signatures: the extension API as containers/image uses it", async (t) => {
  const registry = await startRegistry();
  const base = registry.url;
  const url = `${base}/extensions/v2/${REPO}/signatures/${DIGEST}`;
  const put = (body: unknown) =>
    fetch(url, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  try {
    await pushFixture(base);
    let stored: ReturnType<typeof signature>;

    await t.step("an existing manifest without signatures lists none (200)", async () => {
      const response = await fetch(url);
      assertEquals(response.status, 200);
      assertMatch(response.headers.get("content-type") ?? "", /^application\/json/);
      assertEquals(await response.json(), { signatures: [] });
    });

    await t.step("PUT of one signature answers exactly 201", async () => {
      stored = signature();
      const response = await put(stored);
      assertEquals(response.status, 201, await response.clone().text());
      assertEquals(response.headers.get("location"), `/extensions/v2/${REPO}/signatures/${DIGEST}`);
      assertEquals(await response.text(), "");
    });

    await t.step("GET and HEAD list it with schemaVersion", async () => {
      const response = await fetch(url);
      assertEquals(await response.json(), { signatures: [stored] });
      const head = await fetch(url, { method: "HEAD" });
      assertEquals(head.status, 200);
      assertEquals(await head.text(), "");
    });

    await t.step("the same content again is accepted once", async () => {
      const again = await put(signature());
      assertEquals(again.status, 201);
      await again.body?.cancel();
      const listed = await (await fetch(url)).json();
      assertEquals(listed.signatures.length, 1);
      assertEquals(listed.signatures[0].name, stored.name);
    });

    await t.step("the signature is in the artifact index, unverified", async () => {
      const response = await fetch(`${base}/wharf/v1/${REPO}/artifacts/${DIGEST}`);
      const records = (await response.json()).artifacts.filter((a: { plugin: string }) =>
        a.plugin === "atomic-signatures"
      );
      assertEquals(records.length, 1);
      const [record] = records;
      assertEquals([record.kind, record.type, record.status], [
        "signature",
        "atomic",
        "not-checked",
      ]);
      assertEquals(record.detail.keyId, "CAB425A8150BD056");
      assertEquals(record.detail.identity, "wharf.test/demo/app:1.0");
      assertEquals(record.detail.name, stored.name);
    });

    await t.step("invalid bodies are 400 MANIFEST_INVALID", async () => {
      const bad: unknown[] = [
        "not json",
        [signature()],
        { ...signature(), schemaVersion: 1 },
        { ...signature(), type: "cosign" },
        { ...signature(), name: `${DIGEST}@xyz` },
        { ...signature(), content: "***" },
        { ...signature(), content: btoa("plain text") },
      ];
      for (const body of bad) {
        const response = await put(body);
        assertEquals(response.status, 400, JSON.stringify(body).slice(0, 60));
        assertEquals(await errorCode(response), "MANIFEST_INVALID");
      }
    });

    await t.step("too large bodies are 413", async () => {
      const huge = { ...signature(), content: "A".repeat(6 * 1024 * 1024) };
      const response = await put(huge);
      assertEquals(response.status, 413);
      assertEquals(await errorCode(response), "SIZE_INVALID");
    });

    await t.step("unknown manifests are 404 MANIFEST_UNKNOWN, bad digests 400", async () => {
      const other = await pushImage(base, REPO, "other");
      const unknown = `sha256:${"0".repeat(64)}`;
      for (const method of ["GET", "PUT"]) {
        const response = await fetch(`${base}/extensions/v2/${REPO}/signatures/${unknown}`, {
          method,
          body: method === "PUT" ? JSON.stringify(signature()) : undefined,
        });
        assertEquals([response.status, await errorCode(response)], [404, "MANIFEST_UNKNOWN"]);
      }
      const elsewhere = await fetch(`${base}/extensions/v2/demo/other/signatures/${DIGEST}`);
      assertEquals([elsewhere.status, await errorCode(elsewhere)], [404, "MANIFEST_UNKNOWN"]);
      const bad = await fetch(`${base}/extensions/v2/${REPO}/signatures/sha256:xyz`);
      assertEquals([bad.status, await errorCode(bad)], [400, "DIGEST_INVALID"]);
      const mismatch = await fetch(
        `${base}/extensions/v2/${REPO}/signatures/${other.digest}`,
        { method: "PUT", body: JSON.stringify(signature()) },
      );
      assertEquals([mismatch.status, await errorCode(mismatch)], [400, "MANIFEST_INVALID"]);
    });

    await t.step("deleting the manifest removes its signatures", async () => {
      const response = await fetch(`${base}/v2/${REPO}/manifests/${DIGEST}`, { method: "DELETE" });
      assertEquals(response.status, 202);
      await response.body?.cancel();
      const gone = await fetch(url);
      assertEquals(gone.status, 404);
      await gone.body?.cancel();
      await pushFixture(base);
      assertEquals(await (await fetch(url)).json(), { signatures: [] });
    });
  } catch (err) {
    console.error(registry.logs());
    throw err;
  } finally {
    await registry.close();
  }
});

Deno.test("atomic signatures: GET needs pull, PUT needs push", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wharf-atomic-" });
  try {
    const open = await startRegistry({
      dataDir,
      config: { auth: { loopbackAnonymous: ["pull", "push"] } },
    });
    try {
      await pushFixture(open.url, "public/app");
      await pushFixture(open.url, "private/app");
    } finally {
      await open.close({ keepData: true });
    }
    const registry = await startRegistry({
      dataDir,
      config: {
        auth: { rules: [{ repositories: ["public/**"], anonymous: true, actions: ["pull"] }] },
      },
    });
    try {
      const url = (repo: string) => `${registry.url}/extensions/v2/${repo}/signatures/${DIGEST}`;
      const pull = await fetch(url("public/app"));
      assertEquals(pull.status, 200);
      await pull.body?.cancel();
      const push = await fetch(url("public/app"), {
        method: "PUT",
        body: JSON.stringify(signature()),
      });
      assertEquals([push.status, await errorCode(push)], [403, "DENIED"]);
      const hidden = await fetch(url("private/app"));
      assertEquals([hidden.status, await errorCode(hidden)], [403, "DENIED"]);
      const badName = await fetch(`${registry.url}/extensions/v2/Bad/signatures/${DIGEST}`);
      assertEquals([badName.status, await errorCode(badName)], [400, "NAME_INVALID"]);
    } finally {
      await registry.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
