/**
 * Test content of the OCI distribution-spec conformance suite, v1.1 (opencontainers/distribution-spec
 * `conformance/setup.go` and `conformance/image.go`), rebuilt byte for byte the way the Go suite
 * builds it: per-workflow configs and manifests, the gzip test layer, the streamed and chunked
 * blobs, the empty-layer manifest, the empty JSON blob and the referrers artifacts.
 *
 * Environment switches of the Go suite are fixed here (see {@link settings}); Wharf's tests never
 * read the `OCI_*` variables.
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";

/** One blob of test content, as the Go suite's `TestBlob`. */
export interface TestBlob {
  content: Uint8Array<ArrayBuffer>;
  contentLength: string;
  digest: string;
}

/**
 * The Go suite's environment switches, chosen for Wharf.
 *
 * - `OCI_AUTOMATIC_CROSSMOUNT=1`: Wharf cross-mounts a blob it can find when `from` is missing, so
 *   the "automatic content discovery enabled" case runs and the "disabled" case is skipped.
 * - `OCI_DELETE_MANIFEST_BEFORE_BLOBS=1` (the suite's default): teardowns delete manifests first.
 * - Deletion of manifests and blobs is ENABLED in Wharf, so where the suite also accepts "deletion
 *   disallowed" answers (405, or 400 `UNSUPPORTED` for tags), we do not: `deletesEnabled`.
 * - Referrers are ENABLED (the v1.1 suite has no switch for them; it always checks them).
 * - `OCI_TEST_PULL`, `OCI_TEST_PUSH`, `OCI_TEST_CONTENT_DISCOVERY`, `OCI_TEST_CONTENT_MANAGEMENT`
 *   are all on; `OCI_HIDE_SKIPPED_WORKFLOWS` is moot. No `OCI_TAG_NAME`/`OCI_MANIFEST_DIGEST`/
 *   `OCI_BLOB_DIGEST`/`OCI_TAG_LIST` are given, so every workflow runs its own setup.
 */
export const settings = {
  runPullSetup: true,
  runPushSetup: true,
  runContentDiscoverySetup: true,
  runContentManagementSetup: true,
  deleteManifestBeforeBlobs: true,
  runAutomaticCrossmountTest: true,
  automaticCrossmountEnabled: true,
  deletesEnabled: true,
} as const;

/** Namespaces (repository names) per workflow; the Go suite uses one `OCI_NAMESPACE` for all. */
export const namespaces = {
  pull: "conformance/pull",
  push: "conformance/push",
  discovery: "conformance/discovery",
  management: "conformance/management",
  /** `OCI_CROSSMOUNT_NAMESPACE` default: `conformance-<uuid>`. */
  crossmount: `conformance-${crypto.randomUUID()}`,
} as const;

export const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
export const CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
export const LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
export const EMPTY_JSON_TYPE = "application/vnd.oci.empty.v1+json";

export const emptyLayerTestTag = "emptylayer";
export const testTagName = "tagtest0";
/** The referrers filter name reported in `OCI-Filters-Applied`. */
export const artifactTypeFilter = "artifactType";
export const nonexistentManifest = ".INVALID_MANIFEST_NAME";
export const invalidManifestContent = bytes("blablabla");

/** The error codes a conforming error body may carry (setup.go `errorCodes`). */
export const errorCodes = [
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "MANIFEST_UNVERIFIED",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "TAG_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
] as const;

/** UTF-8 bytes of a string. */
export function bytes(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

/** `sha256:<hex>` of some bytes (go-digest `FromBytes`). */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function testBlob(content: Uint8Array<ArrayBuffer>): TestBlob {
  return { content, contentLength: String(content.length), digest: sha256(content) };
}

/** Go's `json.MarshalIndent(v, "", "\t")` for the plain values used here. */
function marshalIndent(value: unknown): Uint8Array<ArrayBuffer> {
  return bytes(JSON.stringify(value, null, "\t"));
}

/** Go marshals `[]byte` as standard base64 and a nil `[]byte` as `null`. */
function base64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64");
}

/** A descriptor in image.go's field order; `newUnspecifiedField` has no `omitempty`. */
interface DescriptorInit {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  data?: Uint8Array;
  artifactType?: string;
  newUnspecifiedField?: Uint8Array;
}

function descriptor(init: DescriptorInit): Record<string, unknown> {
  const out: Record<string, unknown> = {
    mediaType: init.mediaType,
    digest: init.digest,
    size: init.size,
  };
  if (init.annotations) out.annotations = init.annotations;
  if (init.data?.length) out.data = base64(init.data);
  if (init.artifactType) out.artifactType = init.artifactType;
  out.newUnspecifiedField = init.newUnspecifiedField ? base64(init.newUnspecifiedField) : null;
  return out;
}

interface ManifestInit {
  mediaType?: string;
  artifactType?: string;
  config: Record<string, unknown>;
  layers: Record<string, unknown>[];
  subject?: Record<string, unknown>;
  annotations?: Record<string, string>;
}

/** An image manifest in image.go's field order. */
function manifest(init: ManifestInit): Uint8Array<ArrayBuffer> {
  const out: Record<string, unknown> = { schemaVersion: 2 };
  if (init.mediaType) out.mediaType = init.mediaType;
  if (init.artifactType) out.artifactType = init.artifactType;
  out.config = init.config;
  out.layers = init.layers;
  if (init.subject) out.subject = init.subject;
  if (init.annotations) out.annotations = init.annotations;
  return marshalIndent(out);
}

/** setup.go `randomString`: `n` characters from `[0-9A-Za-z-]`. */
function randomString(n: number): string {
  const letters = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-";
  const random = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(random, (b) => letters[b % letters.length]).join("");
}

/**
 * setup.go `randomBlob`: reproducible pseudo-random bytes from a seed. Go's `math/rand` stream
 * cannot be reproduced here, so a small seeded generator (mulberry32) stands in for it.
 */
function randomBlob(size: number, seed: number): Uint8Array<ArrayBuffer> {
  let state = seed >>> 0;
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** Ginkgo's random seed stand-in; printed by the tests so a failing run can be told apart. */
export const seed = Math.floor(Math.random() * 2 ** 31);

// The Go suite builds `numWorkflows` configs and manifests; `numWorkflows` comes out of an iota
// expression as 16, but only indices 0–4 are used: 0 pull, 1 pull + push, 2 discovery,
// 3 management (and the never-pushed subject of refsManifestCLayerArtifact), 4 the referrers subject.
const WORKFLOW_SLOTS = 5;

/**
 * One unique config per workflow: a random `author` makes each digest unique.
 */
export const configs: TestBlob[] = Array.from(
  { length: WORKFLOW_SLOTS },
  () =>
    testBlob(marshalIndent({
      author: randomString(16),
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    })),
);

// $ echo 'you bothered to find out what was in here. Congratulations!' > test.txt
// $ tar czvf test.tar.gz test.txt && base64 test.tar.gz
const layerBase64String =
  "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0" +
  "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD" +
  "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA";

/** The gzipped tarball used as the one layer of every test image. */
export const layerBlobData: Uint8Array<ArrayBuffer> = new Uint8Array(
  Buffer.from(layerBase64String, "base64"),
);
export const layerBlobDigest = sha256(layerBlobData);
export const layerBlobContentLength = String(layerBlobData.length);

const layers = [descriptor({
  mediaType: LAYER_TYPE,
  size: layerBlobData.length,
  digest: layerBlobDigest,
})];

/** The config descriptor carries the config itself as `data` plus an unknown field. */
function configDescriptor(config: TestBlob): Record<string, unknown> {
  return descriptor({
    mediaType: CONFIG_TYPE,
    digest: config.digest,
    size: config.content.length,
    data: config.content,
    newUnspecifiedField: bytes("hello world"),
  });
}

/** One unique image manifest per workflow (config `i` plus the test layer). */
export const manifests: TestBlob[] = configs.map((config) =>
  testBlob(manifest({ mediaType: MANIFEST_TYPE, config: configDescriptor(config), layers }))
);

/** Used in the push test: config[1] and no layers, and no `mediaType` field. */
export const emptyLayerManifestContent = manifest({
  config: configDescriptor(configs[1]),
  layers: [],
});
export const emptyLayerManifestDigest = sha256(emptyLayerManifestContent);

/** Streamed-upload blob (setup.go `testBlobA`). */
export const testBlobA = randomBlob(42, seed + 1);
export const testBlobALength = String(testBlobA.length);
export const testBlobADigest = sha256(testBlobA);

/** The chunked-upload blob and its two chunks; rebuilt by {@link setupChunkedBlob}. */
export const chunked = {
  blob: new Uint8Array(0),
  digest: "",
  chunk1: new Uint8Array(0),
  chunk1Length: "",
  chunk1Range: "",
  chunk2: new Uint8Array(0),
  chunk2Length: "",
  chunk2Range: "",
};

/**
 * setup.go `setupChunkedBlob`: a `size`-byte blob split after `size/2+1` bytes. The push test calls
 * it again when the registry announces an `OCI-Chunk-Min-Length` above the first chunk's length.
 */
export function setupChunkedBlob(size: number): void {
  const blob = randomBlob(size, seed + 2);
  const cut = Math.floor(size / 2) + 1;
  chunked.blob = blob;
  chunked.digest = sha256(blob);
  chunked.chunk1 = blob.slice(0, cut);
  chunked.chunk1Length = String(chunked.chunk1.length);
  chunked.chunk1Range = `0-${chunked.chunk1.length - 1}`;
  chunked.chunk2 = blob.slice(cut);
  chunked.chunk2Length = String(chunked.chunk2.length);
  chunked.chunk2Range = `${chunked.chunk1.length}-${blob.length - 1}`;
}
setupChunkedBlob(42);

/** `sha256("hello world")`: a digest nothing in the registry has. */
export const dummyDigest = sha256("hello world");

// ---- referrers (artifacts with a `subject`) ----

export const emptyJSONBlob = bytes("{}");
export const emptyJSONDescriptor = {
  mediaType: EMPTY_JSON_TYPE,
  size: emptyJSONBlob.length,
  digest: sha256(emptyJSONBlob),
};

export const testRefBlobA = bytes("NHL Peanut Butter on my NHL bagel");
export const testRefBlobALength = String(testRefBlobA.length);
export const testRefBlobADigest = sha256(testRefBlobA);
export const testRefArtifactTypeA = "application/vnd.nhl.peanut.butter.bagel";

export const testRefBlobB = bytes("NBA Strawberry Jam on my NBA croissant");
export const testRefBlobBLength = String(testRefBlobB.length);
export const testRefBlobBDigest = sha256(testRefBlobB);
export const testRefArtifactTypeB = "application/vnd.nba.strawberry.jam.croissant";

export const testRefArtifactTypeIndex = "application/vnd.food.stand";
export const testAnnotationKey = "org.opencontainers.conformance.test";
/** Expected annotation value per referrer digest. */
export const testAnnotationValues: Record<string, string> = {};

function subjectOf(target: TestBlob): Record<string, unknown> {
  return descriptor({
    mediaType: MANIFEST_TYPE,
    size: target.content.length,
    digest: target.digest,
  });
}

function refBlobDescriptor(mediaType: string, blob: Uint8Array): Record<string, unknown> {
  return descriptor({ mediaType, size: blob.length, digest: sha256(blob) });
}

function referrer(content: Uint8Array<ArrayBuffer>, annotation?: string): TestBlob {
  const blob = testBlob(content);
  if (annotation !== undefined) testAnnotationValues[blob.digest] = annotation;
  return blob;
}

/** Artifact with `subject` = manifests[4], artifact type carried as `config.mediaType` (A). */
export const refsManifestAConfigArtifact = referrer(
  manifest({
    mediaType: MANIFEST_TYPE,
    config: refBlobDescriptor(testRefArtifactTypeA, testRefBlobA),
    subject: subjectOf(manifests[4]),
    layers: [descriptor(emptyJSONDescriptor)],
    annotations: { [testAnnotationKey]: "test config a" },
  }),
  "test config a",
);

/** Artifact with `subject` = manifests[4], artifact type carried as `config.mediaType` (B). */
export const refsManifestBConfigArtifact = referrer(
  manifest({
    mediaType: MANIFEST_TYPE,
    config: refBlobDescriptor(testRefArtifactTypeB, testRefBlobB),
    subject: subjectOf(manifests[4]),
    layers: [descriptor(emptyJSONDescriptor)],
    annotations: { [testAnnotationKey]: "test config b" },
  }),
  "test config b",
);

/** Artifact with `subject` = manifests[4], `artifactType` set and the empty JSON config (A). */
export const refsManifestALayerArtifact = referrer(
  manifest({
    mediaType: MANIFEST_TYPE,
    artifactType: testRefArtifactTypeA,
    config: descriptor(emptyJSONDescriptor),
    subject: subjectOf(manifests[4]),
    layers: [refBlobDescriptor(testRefArtifactTypeA, testRefBlobA)],
    annotations: { [testAnnotationKey]: "test layer a" },
  }),
  "test layer a",
);

/** Artifact with `subject` = manifests[4], `artifactType` set and the empty JSON config (B). */
export const refsManifestBLayerArtifact = referrer(
  manifest({
    mediaType: MANIFEST_TYPE,
    artifactType: testRefArtifactTypeB,
    config: descriptor(emptyJSONDescriptor),
    subject: subjectOf(manifests[4]),
    layers: [refBlobDescriptor(testRefArtifactTypeB, testRefBlobB)],
    annotations: { [testAnnotationKey]: "test layer b" },
  }),
  "test layer b",
);

/** Same as B-layer but its subject, manifests[3], is never pushed in the discovery workflow. */
export const refsManifestCLayerArtifact = referrer(manifest({
  mediaType: MANIFEST_TYPE,
  artifactType: testRefArtifactTypeB,
  config: descriptor(emptyJSONDescriptor),
  subject: subjectOf(manifests[3]),
  layers: [refBlobDescriptor(testRefArtifactTypeB, testRefBlobB)],
}));

/** An index artifact with `subject` = manifests[4], listing the two "A" artifacts. */
export const refsIndexArtifact = referrer(
  marshalIndent({
    schemaVersion: 2,
    mediaType: INDEX_TYPE,
    artifactType: testRefArtifactTypeIndex,
    manifests: [
      descriptor({
        mediaType: MANIFEST_TYPE,
        size: refsManifestAConfigArtifact.content.length,
        digest: refsManifestAConfigArtifact.digest,
      }),
      descriptor({
        mediaType: MANIFEST_TYPE,
        size: refsManifestALayerArtifact.content.length,
        digest: refsManifestALayerArtifact.digest,
      }),
    ],
    subject: subjectOf(manifests[4]),
    annotations: { [testAnnotationKey]: "test index" },
  }),
  "test index",
);
