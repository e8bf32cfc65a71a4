/**
 * OCI distribution-spec conformance, v1.1: the Content Management workflow
 * (`conformance/04_management_test.go`) — deleting tags, manifests and blobs — one step per
 * `g.Specify`, in the suite's order, against a real Wharf process.
 * @module
 */
import {
  type AuthMode,
  type Backend,
  registerWorkflow,
  startConformanceRegistry,
} from "./auth_modes.ts";
import { assertEquals, assertOk } from "../assert.ts";
import {
  configs,
  layerBlobData,
  layerBlobDigest,
  MANIFEST_TYPE,
  manifests,
  namespaces,
  settings,
} from "./fixtures.ts";
import {
  describe,
  errors,
  expectStatus,
  json,
  relativeLocation,
  type StatusMatcher,
  SUCCESS,
} from "./http.ts";

const name = namespaces.management;
const defaultTagName = "tagtest0";

// With deletion enabled (see fixtures.ts `settings`), the "deletion disallowed" answers the suite
// also accepts (400 UNSUPPORTED / 405 for tags, 405 for blobs, 200 for a still-present manifest)
// are not accepted.
const TAG_DELETED: StatusMatcher[] = settings.deletesEnabled ? [202] : [400, 202, 405];
const BLOB_DELETED: StatusMatcher[] = settings.deletesEnabled ? [202, 404] : [202, 404, 405];
const MANIFEST_GONE: StatusMatcher[] = settings.deletesEnabled ? [404] : [404, 200];

interface TagListBody {
  tags?: string[] | null;
}

async function managementWorkflow(
  t: Deno.TestContext,
  mode: AuthMode,
  backend: Backend = "embedded",
) {
  const { client, close } = await startConformanceRegistry(mode, backend);
  let tagToDelete = "";
  let numTags = 0;
  let blobDeleteAllowed = true;

  const pushBlob = async (content: Uint8Array<ArrayBuffer>, digest: string) => {
    const post = await client.request("POST", `/v2/${name}/blobs/uploads/`);
    const put = await client.request("PUT", relativeLocation(post), {
      query: { digest },
      headers: { "Content-Type": "application/octet-stream" },
      body: content,
    });
    expectStatus(put, SUCCESS);
  };

  try {
    // ---- Setup ----
    await t.step({
      name: "Setup: Populate registry with test config blob",
      ignore: !settings.runContentManagementSetup,
      fn: () => pushBlob(configs[3].content, configs[3].digest),
    });

    await t.step({
      name: "Setup: Populate registry with test layer",
      ignore: !settings.runContentManagementSetup,
      fn: () => pushBlob(layerBlobData, layerBlobDigest),
    });

    await t.step({
      name: "Setup: Populate registry with test tag",
      ignore: !settings.runContentManagementSetup,
      fn: async () => {
        tagToDelete = defaultTagName;
        const res = await client.request("PUT", `/v2/${name}/manifests/${tagToDelete}`, {
          headers: { "Content-Type": MANIFEST_TYPE },
          body: manifests[3].content,
        });
        expectStatus(res, SUCCESS);
      },
    });

    await t.step({
      name: "Setup: Check how many tags there are before anything gets deleted",
      ignore: !settings.runContentManagementSetup,
      fn: async () => {
        const res = await client.request("GET", `/v2/${name}/tags/list`);
        expectStatus(res, 200);
        numTags = json<TagListBody>(res).tags?.length ?? 0;
      },
    });

    // ---- Manifest delete ----
    await t.step(
      "Manifest delete: DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)",
      async () => {
        const res = await client.request("DELETE", `/v2/${name}/manifests/${tagToDelete}`);
        expectStatus(res, ...TAG_DELETED);
        if (res.status === 400) {
          const list = errors(res);
          assertOk(list.length > 0, `empty errors array: ${describe(res)}`);
          assertEquals(list[0].code, "UNSUPPORTED");
        }
      },
    );

    await t.step(
      "Manifest delete: DELETE request to manifest (digest) should yield 202 response unless already deleted",
      async () => {
        const res = await client.request("DELETE", `/v2/${name}/manifests/${manifests[3].digest}`);
        // If the tag delete above removed the manifest too, this may 404 (which is ok).
        expectStatus(res, 202, 404);
      },
    );

    await t.step(
      "Manifest delete: GET request to deleted manifest URL should yield 404 response, unless delete is disallowed",
      async () => {
        const res = await client.request("GET", `/v2/${name}/manifests/${manifests[3].digest}`);
        expectStatus(res, ...MANIFEST_GONE);
      },
    );

    await t.step(
      "Manifest delete: GET request to tags list should reflect manifest deletion",
      async () => {
        const res = await client.request("GET", `/v2/${name}/tags/list`);
        expectStatus(res, 200);
        const tags = json<TagListBody>(res).tags ?? [];
        assertOk(tags.length < numTags, `expected fewer than ${numTags} tags: ${describe(res)}`);
      },
    );

    // ---- Blob delete ----
    await t.step({
      name: "Blob delete: DELETE request to blob URL should yield 202 response",
      ignore: !settings.runContentManagementSetup,
      fn: async () => {
        // config blob
        let res = await client.request("DELETE", `/v2/${name}/blobs/${configs[3].digest}`);
        expectStatus(res, ...BLOB_DELETED);
        // layer blob
        res = await client.request("DELETE", `/v2/${name}/blobs/${layerBlobDigest}`);
        expectStatus(res, ...BLOB_DELETED);
        if (res.status === 405) blobDeleteAllowed = false;
      },
    });

    await t.step({
      name: "Blob delete: GET request to deleted blob URL should yield 404 response",
      ignore: !settings.runContentManagementSetup || !blobDeleteAllowed,
      fn: async () => {
        const res = await client.request("GET", `/v2/${name}/blobs/${configs[3].digest}`);
        expectStatus(res, 404);
      },
    });

    // ---- Teardown: none required for content management ----
  } finally {
    await close();
  }
}

registerWorkflow("Content Management", managementWorkflow);
