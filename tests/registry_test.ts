/**
 * Integration tests of registry behaviour beyond the conformance suite: validation that leaves
 * stored data untouched, byte-identical manifests, negotiation, repository scoping, mounts,
 * ranges and deduplication, against a real server process.
 */
import { assertEquals } from "./assert.ts";
import { startRegistry } from "./harness.ts";
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
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

async function tags(base: string, repo: string): Promise<string[]> {
  const response = await fetch(`${base}/v2/${repo}/tags/list`);
  return (await response.json()).tags;
}

Deno.test("registry behaviour", async (t) => {
  const registry = await startRegistry();
  const base = registry.url;
  try {
    const image = await pushImage(base, "it/app", "v1");

    await t.step("invalid manifests are refused and leave stored data as it was", async () => {
      const before = await tags(base, "it/app");
      const unknownLayer = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: descriptor("application/vnd.oci.image.config.v1+json", new Uint8Array([1])),
        layers: [],
      });
      const cases: [string, string, number, string][] = [
        ["not json", "{", 400, "MANIFEST_INVALID"],
        ["array", "[]", 400, "MANIFEST_INVALID"],
        ["schema 1", JSON.stringify({ schemaVersion: 1, name: "x" }), 400, "MANIFEST_INVALID"],
        [
          "no config",
          JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST }),
          400,
          "MANIFEST_INVALID",
        ],
        ["unknown blob", unknownLayer, 400, "MANIFEST_BLOB_UNKNOWN"],
      ];
      for (const [what, body, status, code] of cases) {
        const { response, text } = await putManifest(base, "it/app", "v1", body);
        assertEquals(response.status, status, what);
        assertEquals(JSON.parse(text).errors[0].code, code, what);
      }
      const wrongSize = JSON.parse(new TextDecoder().decode(image.manifest));
      wrongSize.layers[0].size += 1;
      const sized = await putManifest(base, "it/app", "v1", JSON.stringify(wrongSize));
      assertEquals(sized.response.status, 400);
      const mismatched = await putManifest(base, "it/app", sha256("other"), image.manifest);
      assertEquals(mismatched.response.status, 400);
      assertEquals(JSON.parse(mismatched.text).errors[0].code, "DIGEST_INVALID");
      const big = await putManifest(base, "it/app", "big", "x".repeat(4 * 1024 * 1024 + 1));
      assertEquals(big.response.status, 413);
      assertEquals(await tags(base, "it/app"), before);
      const current = await fetch(`${base}/v2/it/app/manifests/v1`);
      assertEquals(new Uint8Array(await current.arrayBuffer()), image.manifest);
    });

    await t.step("manifests come back byte-identical with their media type", async () => {
      const config = new TextEncoder().encode("{}");
      await pushBlob(base, "it/bytes", config);
      const text = `{\n  "schemaVersion": 2,\n    "mediaType": "${DOCKER_MANIFEST}",` +
        `"config": ${
          JSON.stringify(descriptor("application/vnd.docker.container.image.v1+json", config))
        },` +
        `"layers": []   }\n\n`;
      const { response } = await putManifest(base, "it/bytes", "odd", text, DOCKER_MANIFEST);
      assertEquals(response.status, 201);
      const digest = sha256(text);
      assertEquals(response.headers.get("docker-content-digest"), digest);
      for (const reference of ["odd", digest]) {
        const got = await fetch(`${base}/v2/it/bytes/manifests/${reference}`);
        assertEquals(got.headers.get("content-type"), DOCKER_MANIFEST);
        assertEquals(got.headers.get("docker-content-digest"), digest);
        assertEquals(await got.text(), text);
      }
    });

    await t.step(
      "a client that accepts only other manifest types gets MANIFEST_UNKNOWN",
      async () => {
        const index = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [{
            ...descriptor(OCI_MANIFEST, image.manifest),
            platform: { os: "linux", architecture: "amd64" },
          }],
        });
        assertEquals(
          (await putManifest(base, "it/app", "multi", index, OCI_INDEX)).response.status,
          201,
        );
        const docker = await fetch(`${base}/v2/it/app/manifests/multi`, {
          headers: { Accept: DOCKER_MANIFEST },
        });
        assertEquals(docker.status, 404);
        assertEquals(await errorCode(docker), "MANIFEST_UNKNOWN");
        const oci = await fetch(`${base}/v2/it/app/manifests/multi`, {
          headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_INDEX}` },
        });
        assertEquals(oci.status, 200);
        assertEquals(await oci.text(), index);
      },
    );

    await t.step("an index needs its child manifests in the repository", async () => {
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: sha256("nope"), size: 4 }],
      });
      const { response, text } = await putManifest(base, "it/app", "broken", index, OCI_INDEX);
      assertEquals(response.status, 400);
      assertEquals(JSON.parse(text).errors[0].code, "MANIFEST_BLOB_UNKNOWN");
    });

    await t.step("blobs are scoped to repositories and mounted only when readable", async () => {
      const layer = image.layers[0];
      const elsewhere = await fetch(`${base}/v2/it/other/blobs/${layer}`);
      assertEquals(elsewhere.status, 404);
      assertEquals(await errorCode(elsewhere), "BLOB_UNKNOWN");
      const mount = await fetch(`${base}/v2/it/other/blobs/uploads/?mount=${layer}&from=it/app`, {
        method: "POST",
      });
      await mount.body?.cancel();
      assertEquals(mount.status, 201);
      assertEquals(mount.headers.get("location"), `/v2/it/other/blobs/${layer}`);
      const head = await fetch(`${base}/v2/it/other/blobs/${layer}`, { method: "HEAD" });
      assertEquals(head.status, 200);
      assertEquals(head.headers.get("content-length"), "1024");
      const automatic = await fetch(`${base}/v2/it/third/blobs/uploads/?mount=${image.layers[1]}`, {
        method: "POST",
      });
      await automatic.body?.cancel();
      assertEquals(automatic.status, 201);
      const badFrom = await fetch(
        `${base}/v2/it/fourth/blobs/uploads/?mount=${layer}&from=Bad..Name`,
        {
          method: "POST",
        },
      );
      assertEquals(badFrom.status, 400);
      assertEquals(await errorCode(badFrom), "NAME_INVALID");
    });

    await t.step("identical blobs are stored once", async () => {
      const bytes = randomBytes(4096);
      const digest = await pushBlob(base, "it/dedup-a", bytes);
      await pushBlob(base, "it/dedup-b", bytes);
      const hex = digest.slice("sha256:".length);
      const stat = await Deno.stat(`${registry.dataDir}/blobs/sha256/${hex.slice(0, 2)}/${hex}`);
      assertEquals(stat.size, 4096);
      const uploads = [...Deno.readDirSync(`${registry.dataDir}/uploads`)];
      assertEquals(uploads.length, 0);
    });

    await t.step("ranges: 206 with Content-Range, 416 when unsatisfiable", async () => {
      const bytes = randomBytes(1000);
      const digest = await pushBlob(base, "it/range", bytes);
      const part = await fetch(`${base}/v2/it/range/blobs/${digest}`, {
        headers: { Range: "bytes=10-19" },
      });
      assertEquals(part.status, 206);
      assertEquals(part.headers.get("content-range"), "bytes 10-19/1000");
      assertEquals(new Uint8Array(await part.arrayBuffer()), bytes.slice(10, 20));
      const tail = await fetch(`${base}/v2/it/range/blobs/${digest}`, {
        headers: { Range: "bytes=990-" },
      });
      assertEquals(new Uint8Array(await tail.arrayBuffer()), bytes.slice(990));
      const out = await fetch(`${base}/v2/it/range/blobs/${digest}`, {
        headers: { Range: "bytes=1000-" },
      });
      assertEquals(out.status, 416);
      assertEquals(out.headers.get("content-range"), "bytes */1000");
      await out.body?.cancel();
    });

    await t.step("names and digests are validated at the edge", async () => {
      const cases: [string, string, number, string][] = [
        ["GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"],
        ["GET", "/v2/a..b/manifests/latest", 400, "NAME_INVALID"],
        ["GET", "/v2/it/app/blobs/sha256:xyz", 400, "DIGEST_INVALID"],
        ["GET", "/v2/it/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"],
        ["GET", "/v2/it/app/manifests/sha256:short", 400, "DIGEST_INVALID"],
        ["GET", "/v2/it/app/referrers/sha256:bad", 400, "DIGEST_INVALID"],
        ["GET", "/v2/it/app/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"],
        ["GET", "/v2/nothing/here/tags/list", 404, "NAME_UNKNOWN"],
        [
          "PUT",
          "/v2/it/app/blobs/uploads/not-a-session?digest=" + sha256(""),
          404,
          "BLOB_UPLOAD_UNKNOWN",
        ],
        ["PATCH", "/v2/it/app/blobs/uploads/..%2F..%2Fetc", 404, "BLOB_UPLOAD_UNKNOWN"],
      ];
      for (const [method, path, status, code] of cases) {
        const response = await fetch(`${base}${path}`, { method });
        assertEquals(response.status, status, `${method} ${path}`);
        assertEquals(await errorCode(response), code, `${method} ${path}`);
      }
    });

    await t.step("a session belongs to its repository", async () => {
      const start = await fetch(`${base}/v2/it/owner/blobs/uploads/`, { method: "POST" });
      await start.body?.cancel();
      const id = start.headers.get("docker-upload-uuid");
      const other = await fetch(`${base}/v2/it/intruder/blobs/uploads/${id}`);
      assertEquals(other.status, 404);
      assertEquals(await errorCode(other), "BLOB_UPLOAD_UNKNOWN");
      const cancel = await fetch(`${base}/v2/it/owner/blobs/uploads/${id}`, { method: "DELETE" });
      assertEquals(cancel.status, 204);
      const gone = await fetch(`${base}/v2/it/owner/blobs/uploads/${id}`);
      assertEquals(gone.status, 404);
      await gone.body?.cancel();
    });

    await t.step("a wrong digest at PUT discards the session and stores nothing", async () => {
      const bytes = randomBytes(100);
      const start = await fetch(`${base}/v2/it/wrong/blobs/uploads/`, { method: "POST" });
      await start.body?.cancel();
      const location = new URL(start.headers.get("location")!, base);
      location.searchParams.set("digest", sha256("something else"));
      const put = await fetch(location, { method: "PUT", body: bytes });
      assertEquals(put.status, 400);
      assertEquals(await errorCode(put), "DIGEST_INVALID");
      const blob = await fetch(`${base}/v2/it/wrong/blobs/${sha256(bytes)}`, { method: "HEAD" });
      assertEquals(blob.status, 404);
      assertEquals([...Deno.readDirSync(`${registry.dataDir}/uploads`)].length, 0);
    });

    await t.step("the catalog lists repositories holding manifests, paginated", async () => {
      const all = await (await fetch(`${base}/v2/_catalog`)).json();
      assertEquals(all.repositories, ["it/app", "it/bytes"]);
      const first = await fetch(`${base}/v2/_catalog?n=1`);
      assertEquals((await first.json()).repositories, ["it/app"]);
      assertEquals(first.headers.get("link"), '</v2/_catalog?n=1&last=it%2Fapp>; rel="next"');
      const second = await fetch(`${base}/v2/_catalog?n=1&last=it%2Fapp`);
      assertEquals((await second.json()).repositories, ["it/bytes"]);
      assertEquals(second.headers.get("link"), null);
    });
  } finally {
    await registry.close();
  }
});

Deno.test("an interrupted PATCH leaves the session as it was, and sessions survive a restart", async () => {
  const registry = await startRegistry();
  const dataDir = registry.dataDir;
  let restarted;
  try {
    const base = registry.url;
    const first = randomBytes(3000);
    const second = randomBytes(2000);
    const start = await fetch(`${base}/v2/it/resume/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    const location = start.headers.get("location")!;
    const patch = await fetch(new URL(location, base), {
      method: "PATCH",
      headers: { "Content-Range": "0-2999", "Content-Type": "application/octet-stream" },
      body: first,
    });
    await patch.body?.cancel();
    assertEquals(patch.status, 202);
    assertEquals(patch.headers.get("range"), "0-2999");

    // Send half of a declared 2000-byte chunk, then drop the connection.
    const { hostname, port } = new URL(base);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    const head = `PATCH ${location} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Range: 3000-4999\r\n` +
      `Content-Length: 2000\r\nContent-Type: application/octet-stream\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    await conn.write(second.subarray(0, 1000));
    conn.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = await fetch(new URL(location, base));
    await status.body?.cancel();
    assertEquals(status.status, 204);
    assertEquals(status.headers.get("range"), "0-2999");

    await registry.close({ keepData: true });
    restarted = await startRegistry({ dataDir });
    const digest = sha256(new Uint8Array([...first, ...second]));
    const url = new URL(location, restarted.url);
    url.searchParams.set("digest", digest);
    const put = await fetch(url, {
      method: "PUT",
      headers: { "Content-Range": "3000-4999" },
      body: second,
    });
    await put.body?.cancel();
    assertEquals(put.status, 201);
    const blob = await fetch(`${restarted.url}/v2/it/resume/blobs/${digest}`);
    assertEquals(new Uint8Array(await blob.arrayBuffer()), new Uint8Array([...first, ...second]));
  } finally {
    await restarted?.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
