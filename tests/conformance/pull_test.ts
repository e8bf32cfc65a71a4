/**
 * OCI distribution-spec conformance, v1.1: the Pull workflow (`conformance/01_pull_test.go`),
 * one step per `g.Specify`, in the suite's order, against a real Wharf process.
 * @module
 */
import {
  type AuthMode,
  type Backend,
  registerWorkflow,
  startConformanceRegistry,
} from "./auth_modes.ts";
import { assertOk } from "../assert.ts";
import {
  configs,
  dummyDigest,
  errorCodes,
  layerBlobContentLength,
  layerBlobData,
  layerBlobDigest,
  MANIFEST_TYPE,
  manifests,
  namespaces,
  nonexistentManifest,
  settings,
  type TestBlob,
  testTagName,
} from "./fixtures.ts";
import {
  describe,
  errors,
  expectHeader,
  expectStatus,
  relativeLocation,
  type StatusMatcher,
  SUCCESS,
} from "./http.ts";

const name = namespaces.pull;

// With deletion enabled (see fixtures.ts `settings`), 405 "deletion disallowed" is not accepted.
const MANIFEST_DELETED: StatusMatcher[] = settings.deletesEnabled ? [SUCCESS] : [SUCCESS, 405];
const BLOB_DELETED: StatusMatcher[] = settings.deletesEnabled
  ? [SUCCESS, 404]
  : [SUCCESS, 404, 405];

async function pullWorkflow(t: Deno.TestContext, mode: AuthMode, backend: Backend = "embedded") {
  const { client, close } = await startConformanceRegistry(mode, backend);
  let tag = "";

  const pushBlob = async (blob: { content: Uint8Array<ArrayBuffer>; digest: string }) => {
    const post = await client.request("POST", `/v2/${name}/blobs/uploads/`);
    const put = await client.request("PUT", relativeLocation(post), {
      query: { digest: blob.digest },
      headers: { "Content-Type": "application/octet-stream" },
      body: blob.content,
    });
    expectStatus(put, SUCCESS);
  };

  const deleteManifest = async (manifest: TestBlob) => {
    const res = await client.request("DELETE", `/v2/${name}/manifests/${manifest.digest}`);
    expectStatus(res, ...MANIFEST_DELETED);
  };

  try {
    // ---- Setup ----
    await t.step("Setup: Populate registry with test blob (config[0])", async () => {
      await pushBlob(configs[0]);
    });

    await t.step("Setup: Populate registry with test blob (config[1])", async () => {
      await pushBlob(configs[1]);
    });

    await t.step("Setup: Populate registry with test layer", async () => {
      assertOk(layerBlobContentLength === String(layerBlobData.length));
      await pushBlob({ content: layerBlobData, digest: layerBlobDigest });
    });

    await t.step("Setup: Populate registry with test manifest (manifest[0], by tag)", async () => {
      tag = testTagName;
      const res = await client.request("PUT", `/v2/${name}/manifests/${tag}`, {
        headers: { "Content-Type": MANIFEST_TYPE },
        body: manifests[0].content,
      });
      expectStatus(res, SUCCESS);
    });

    await t.step(
      "Setup: Populate registry with test manifest (manifest[1], by digest)",
      async () => {
        const res = await client.request("PUT", `/v2/${name}/manifests/${manifests[1].digest}`, {
          headers: { "Content-Type": MANIFEST_TYPE },
          body: manifests[1].content,
        });
        expectStatus(res, SUCCESS);
      },
    );

    await t.step({
      name: "Setup: Get tag name from environment",
      ignore: settings.runPullSetup, // RunOnlyIfNot(runPullSetup): no OCI_TAG_NAME given
      fn: () => {},
    });

    // ---- Pull blobs ----
    await t.step(
      "Pull blobs: HEAD request to nonexistent blob should result in 404 response",
      async () => {
        const res = await client.request("HEAD", `/v2/${name}/blobs/${dummyDigest}`);
        expectStatus(res, 404);
      },
    );

    await t.step("Pull blobs: HEAD request to existing blob should yield 200", async () => {
      const res = await client.request("HEAD", `/v2/${name}/blobs/${configs[0].digest}`);
      expectStatus(res, 200);
      if (res.headers.get("Docker-Content-Digest")) {
        expectHeader(res, "Docker-Content-Digest", configs[0].digest);
      }
    });

    await t.step("Pull blobs: GET nonexistent blob should result in 404 response", async () => {
      const res = await client.request("GET", `/v2/${name}/blobs/${dummyDigest}`);
      expectStatus(res, 404);
    });

    await t.step("Pull blobs: GET request to existing blob URL should yield 200", async () => {
      const res = await client.request("GET", `/v2/${name}/blobs/${configs[0].digest}`);
      expectStatus(res, 200);
    });

    // ---- Pull manifests ----
    const accept = { Accept: MANIFEST_TYPE };

    await t.step(
      "Pull manifests: HEAD request to nonexistent manifest should return 404",
      async () => {
        const res = await client.request("HEAD", `/v2/${name}/manifests/${nonexistentManifest}`);
        expectStatus(res, 404);
      },
    );

    for (const i of [0, 1]) {
      await t.step(
        `Pull manifests: HEAD request to manifest[${i}] path (digest) should yield 200 response`,
        async () => {
          const res = await client.request("HEAD", `/v2/${name}/manifests/${manifests[i].digest}`, {
            headers: accept,
          });
          expectStatus(res, 200);
          if (res.headers.get("Docker-Content-Digest")) {
            expectHeader(res, "Docker-Content-Digest", manifests[i].digest);
          }
        },
      );
    }

    await t.step(
      "Pull manifests: HEAD request to manifest path (tag) should yield 200 response",
      async () => {
        assertOk(tag !== "", "tag must not be empty");
        const res = await client.request("HEAD", `/v2/${name}/manifests/${tag}`, {
          headers: accept,
        });
        expectStatus(res, 200);
        if (res.headers.get("Docker-Content-Digest")) {
          expectHeader(res, "Docker-Content-Digest", manifests[0].digest);
        }
      },
    );

    await t.step("Pull manifests: GET nonexistent manifest should return 404", async () => {
      const res = await client.request("GET", `/v2/${name}/manifests/${nonexistentManifest}`);
      expectStatus(res, 404);
    });

    for (const i of [0, 1]) {
      await t.step(
        `Pull manifests: GET request to manifest[${i}] path (digest) should yield 200 response`,
        async () => {
          const res = await client.request("GET", `/v2/${name}/manifests/${manifests[i].digest}`, {
            headers: accept,
          });
          expectStatus(res, 200);
        },
      );
    }

    await t.step(
      "Pull manifests: GET request to manifest path (tag) should yield 200 response",
      async () => {
        assertOk(tag !== "", "tag must not be empty");
        const res = await client.request("GET", `/v2/${name}/manifests/${tag}`, {
          headers: accept,
        });
        expectStatus(res, 200);
      },
    );

    // ---- Error codes ----
    await t.step(
      "Error codes: 400 response body should contain OCI-conforming JSON message",
      async () => {
        // The Go suite sends `invalidManifestContent` as the body of this GET; fetch cannot send a
        // GET body, and a registry ignores it on GET anyway.
        const res = await client.request("GET", `/v2/${name}/manifests/sha256:totallywrong`, {
          headers: { "Content-Type": MANIFEST_TYPE },
        });
        expectStatus(res, 400, 404);
        if (res.status === 400) {
          const list = errors(res);
          assertOk(list.length > 0, `empty errors array: ${describe(res)}`);
          assertOk(
            (errorCodes as readonly string[]).includes(list[0].code),
            `unknown error code ${list[0].code}: ${describe(res)}`,
          );
        }
      },
    );

    // ---- Teardown ----
    if (settings.deleteManifestBeforeBlobs) {
      await t.step(
        "Teardown: Delete manifest[0] created in setup",
        () => deleteManifest(manifests[0]),
      );
      await t.step(
        "Teardown: Delete manifest[1] created in setup",
        () => deleteManifest(manifests[1]),
      );
    }

    for (const i of [0, 1]) {
      await t.step(`Teardown: Delete config[${i}] blob created in setup`, async () => {
        const res = await client.request("DELETE", `/v2/${name}/blobs/${configs[i].digest}`);
        expectStatus(res, ...BLOB_DELETED);
      });
    }

    await t.step("Teardown: Delete layer blob created in setup", async () => {
      const res = await client.request("DELETE", `/v2/${name}/blobs/${layerBlobDigest}`);
      expectStatus(res, ...BLOB_DELETED);
    });

    if (!settings.deleteManifestBeforeBlobs) {
      await t.step(
        "Teardown: Delete manifest[0] created in setup",
        () => deleteManifest(manifests[0]),
      );
      await t.step(
        "Teardown: Delete manifest[1] created in setup",
        () => deleteManifest(manifests[1]),
      );
    }
  } finally {
    await close();
  }
}

registerWorkflow("Pull", pullWorkflow);
