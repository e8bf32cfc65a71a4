/**
 * Content for mirroring tests, pushed into a real upstream with Wharf's own registry client
 * (so token and Basic auth work): images with real gzip'd tar layers, multi-platform indexes,
 * and cosign signatures, attestations and SBOMs (legacy tags or OCI referrers) made with the
 * same code as `wharf sign`.
 * @module
 */
import { join } from "node:path";
import { RegistryClient } from "../src/client/registry_client.ts";
import type { Credentials } from "../src/client/auth.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from "../src/cosign/attachments.ts";
import { buildPredicate, buildStatement, signEnvelope } from "../src/cosign/dsse.ts";
import { decryptPrivateKey, generateKeyPair } from "../src/cosign/keys.ts";
import { buildPayload } from "../src/cosign/payload.ts";
import { pushAttachment } from "../src/cosign/remote.ts";
import { signPayload } from "../src/cosign/signature.ts";
import { blobPath, initLayout, writeImage, writeIndex } from "./oci_layout.ts";
import type { KeyObject } from "node:crypto";

/** A client for `host` (loopback: plain HTTP). */
export function clientFor(host: string, credentials?: Credentials): RegistryClient {
  return new RegistryClient({ registry: host, credentials, retries: 0 });
}

/** A fresh cosign key pair: PEM files in `dir` and the private key object. */
export async function makeKeys(dir: string, prefix = "cosign") {
  const pair = generateKeyPair("pw");
  const privatePath = join(dir, `${prefix}.key`);
  const publicPath = join(dir, `${prefix}.pub`);
  await Deno.writeTextFile(privatePath, pair.privateKeyPem);
  await Deno.writeTextFile(publicPath, pair.publicKeyPem);
  return { privatePath, publicPath, key: decryptPrivateKey(pair.privateKeyPem, "pw") };
}

/** What {@link pushTestImage} pushed. */
export interface PushedTestImage {
  digest: string;
  mediaType: string;
  size: number;
  /** Children (indexes) with their platforms. */
  children: { digest: string; platform: string }[];
}

/**
 * Pushes an image (or, with `platforms`, an index over one image per platform) built in a
 * scratch OCI layout, and tags it.
 */
export async function pushTestImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  options: { layers?: number; layerSize?: number; platforms?: string[] } = {},
): Promise<PushedTestImage> {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-img-" });
  try {
    await initLayout(dir);
    const sizes = Array.from({ length: options.layers ?? 2 }, () => options.layerSize ?? 2048);
    const platforms = options.platforms ?? ["linux/amd64"];
    const images = [];
    for (const platform of platforms) {
      const [os, architecture] = platform.split("/");
      const image = await writeImage(dir, { layerSizes: sizes, os, architecture });
      for (const blob of image.blobs) {
        await client.pushBlob(repository, await Deno.readFile(blobPath(dir, blob.digest)));
      }
      images.push(image);
    }
    if (!options.platforms) {
      const image = images[0];
      await client.putManifest(repository, tag, image.manifest, image.descriptor.mediaType);
      return {
        digest: image.descriptor.digest,
        mediaType: image.descriptor.mediaType,
        size: image.manifest.length,
        children: [],
      };
    }
    for (const image of images) {
      await client.putManifest(
        repository,
        image.descriptor.digest,
        image.manifest,
        image.descriptor.mediaType,
      );
    }
    const index = await writeIndex(dir, images);
    await client.putManifest(repository, tag, index.index, index.descriptor.mediaType);
    return {
      digest: index.descriptor.digest,
      mediaType: index.descriptor.mediaType,
      size: index.index.length,
      children: images.map((image, i) => ({
        digest: image.descriptor.digest,
        platform: platforms[i],
      })),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Signs an image as `cosign sign --key` does (legacy `.sig` tag, or a referrer). */
export async function signImage(
  client: RegistryClient,
  repository: string,
  image: { digest: string; mediaType: string; size: number },
  key: KeyObject,
  identity: string,
  options: { referrers?: boolean } = {},
) {
  const payload = buildPayload({ dockerReference: identity, manifestDigest: image.digest });
  return await pushAttachment(client, repository, image, "sig", [{
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    bytes: payload,
    annotations: { [SIGNATURE_ANNOTATION]: signPayload(key, payload) },
  }], options);
}

/** Adds a custom in-toto attestation (`.att`) and an SPDX SBOM (`.sbom`). */
export async function attestAndSbom(
  client: RegistryClient,
  repository: string,
  image: { digest: string; mediaType: string; size: number },
  key: KeyObject,
  identity: string,
) {
  const predicateType = "https://cosign.sigstore.dev/attestation/v1";
  const statement = buildStatement(
    predicateType,
    buildPredicate("custom", new TextEncoder().encode("built by the sync test")),
    identity,
    image.digest,
  );
  await pushAttachment(client, repository, image, "att", [{
    mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
    bytes: signEnvelope(key, new TextEncoder().encode(JSON.stringify(statement))),
    annotations: { [SIGNATURE_ANNOTATION]: "", [PREDICATE_TYPE_ANNOTATION]: predicateType },
  }]);
  const spdx = JSON.stringify({
    spdxVersion: "SPDX-2.3",
    SPDXID: "SPDXRef-DOCUMENT",
    name: "sync-test",
    packages: [{ name: "busybox", SPDXID: "SPDXRef-busybox", versionInfo: "1.36" }],
  });
  await pushAttachment(client, repository, image, "sbom", [{
    mediaType: "text/spdx+json",
    bytes: new TextEncoder().encode(spdx),
  }], { append: false });
}

/** Pushes an OCI 1.1 artifact with `subject` (by digest); returns its digest. */
export async function pushReferrer(
  client: RegistryClient,
  repository: string,
  subject: { digest: string; mediaType: string; size: number },
  artifactType: string,
): Promise<string> {
  const empty = new TextEncoder().encode("{}");
  await client.pushBlob(repository, empty);
  const layer = new TextEncoder().encode(`artifact ${crypto.randomUUID()}`);
  await client.pushBlob(repository, layer);
  const { digestOf } = await import("../src/oci/digest.ts");
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType,
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: digestOf(empty),
      size: 2,
    },
    layers: [{ mediaType: "text/plain", digest: digestOf(layer), size: layer.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }));
  const digest = digestOf(manifest);
  await client.putManifest(
    repository,
    digest,
    manifest,
    "application/vnd.oci.image.manifest.v1+json",
  );
  return digest;
}
