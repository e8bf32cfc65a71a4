/**
 * Reading and writing cosign attachments in a registry with the {@link RegistryClient}: the only
 * module of `src/cosign` that does I/O (the registry's plugin uses the pure modules instead).
 * @module
 */
import { OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";
import { type ImageReference, manifestReference } from "../client/reference.ts";
import {
  type FetchedManifest,
  type IndexDescriptor,
  type RegistryClient,
  RegistryClientError,
} from "../client/registry_client.ts";
import {
  ARTIFACT_TYPES,
  type AttachmentKind,
  attachmentLayers,
  attachmentTag,
  buildAttachmentImage,
  type Descriptor,
  type NewLayer,
} from "./attachments.ts";

/** Largest signature/attestation layer read (containers/image uses the same bound). */
export const MAX_LAYER_BYTES = 4 << 20;

/** The manifest a reference names: digest, media type and size. */
export interface ResolvedImage {
  digest: string;
  mediaType: string;
  size: number;
}

/** Resolves a tag or digest reference to its manifest descriptor; throws when it is missing. */
export async function resolveImage(
  client: RegistryClient,
  ref: ImageReference,
): Promise<ResolvedImage> {
  const info = await client.headManifest(ref.repository, manifestReference(ref));
  if (!info) {
    throw new RegistryClientError(
      `image ${ref.registry}/${ref.repository}:${manifestReference(ref)} not found`,
      404,
      "MANIFEST_UNKNOWN",
    );
  }
  return info;
}

/** Where {@link pushAttachment} stored the attachment. */
export interface PushedAttachment {
  /** The tag (legacy) or digest (referrers) the manifest was pushed under. */
  reference: string;
  /** Digest of the attachment manifest. */
  digest: string;
  /** Layers in the manifest after the push (legacy appends). */
  layers: number;
}

/** Options of {@link pushAttachment}. */
export interface PushAttachmentOptions {
  /** OCI 1.1 referrer pushed by digest instead of the `sha256-<hex>.<kind>` tag. */
  referrers?: boolean;
  /** Append to the existing legacy attachment (signatures, attestations) or replace it (SBOM). */
  append?: boolean;
}

/**
 * Pushes an attachment for `subject` the way cosign does: legacy mode reads the existing
 * `sha256-<hex>.<kind>` manifest, appends the layers and re-pushes the tag; referrers mode pushes
 * a manifest with `subject` by digest and, when the registry does not index referrers (no
 * `OCI-Subject` answer), adds it to the `sha256-<hex>` fallback index.
 */
export async function pushAttachment(
  client: RegistryClient,
  repository: string,
  subject: ResolvedImage,
  kind: AttachmentKind,
  add: NewLayer[],
  options: PushAttachmentOptions = {},
): Promise<PushedAttachment> {
  const tag = attachmentTag(subject.digest, kind);
  let existingLayers: Descriptor[] = [];
  if (!options.referrers && options.append !== false) {
    const existing = await client.getManifest(repository, tag, [OCI_MANIFEST]);
    if (existing) {
      if (existing.mediaType !== OCI_MANIFEST) {
        throw new Error(`${tag} is a ${existing.mediaType}, not an OCI image manifest`);
      }
      existingLayers = attachmentLayers(existing.bytes).map((layer) => layer.descriptor);
    }
  }
  const image = buildAttachmentImage({
    kind,
    existingLayers,
    add,
    ...(options.referrers ? { subject } : {}),
  });
  for (const blob of [image.config, ...image.newLayers]) {
    await client.pushBlob(repository, blob.bytes, blob.descriptor.digest);
  }
  if (!options.referrers) {
    await client.putManifest(repository, tag, image.manifest, image.mediaType);
    return { reference: tag, digest: image.digest, layers: image.layers.length };
  }
  const pushed = await client.putManifest(repository, image.digest, image.manifest, OCI_MANIFEST);
  if (!pushed.subject) {
    await addToFallbackIndex(client, repository, subject.digest, {
      mediaType: OCI_MANIFEST,
      digest: image.digest,
      size: image.manifest.length,
      artifactType: ARTIFACT_TYPES[kind],
    });
  }
  return { reference: image.digest, digest: image.digest, layers: image.layers.length };
}

/** Adds a descriptor to the referrers tag schema index `sha256-<hex>` (OCI 1.1 fallback). */
async function addToFallbackIndex(
  client: RegistryClient,
  repository: string,
  subjectDigest: string,
  descriptor: IndexDescriptor,
): Promise<void> {
  const tag = attachmentTag(subjectDigest, "");
  const existing = await client.getManifest(repository, tag, [OCI_INDEX]);
  const manifests: IndexDescriptor[] = existing
    ? JSON.parse(new TextDecoder().decode(existing.bytes)).manifests ?? []
    : [];
  if (manifests.some((m) => m.digest === descriptor.digest)) return;
  manifests.push(descriptor);
  const index = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
  );
  await client.putManifest(repository, tag, index, OCI_INDEX);
}

/** One attachment layer fetched from the registry. */
export interface FetchedLayer {
  /** Where it came from: `<tag>` or `referrer <digest>`, then the layer index. */
  source: string;
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/**
 * Every layer of the image's attachments of `kind`: the legacy tag's layers, then those of each
 * referrer with the cosign artifact type. Layer digests are verified by the client.
 */
export async function fetchAttachmentLayers(
  client: RegistryClient,
  repository: string,
  digest: string,
  kind: AttachmentKind,
): Promise<FetchedLayer[]> {
  const manifests: { source: string; manifest: FetchedManifest }[] = [];
  const tag = attachmentTag(digest, kind);
  const legacy = await client.getManifest(repository, tag, [OCI_MANIFEST]);
  if (legacy) manifests.push({ source: tag, manifest: legacy });
  let referrers: IndexDescriptor[] = [];
  try {
    referrers = await client.referrers(repository, digest, ARTIFACT_TYPES[kind]);
  } catch (err) {
    // A registry without referrers support and without the fallback tag: legacy only.
    if (!(err instanceof RegistryClientError) || err.status >= 500) throw err;
  }
  for (const referrer of referrers) {
    const manifest = await client.getManifest(repository, referrer.digest, [OCI_MANIFEST]);
    if (manifest) manifests.push({ source: `referrer ${referrer.digest}`, manifest });
  }
  const layers: FetchedLayer[] = [];
  for (const { source, manifest } of manifests) {
    for (const [i, { descriptor }] of attachmentLayers(manifest.bytes).entries()) {
      if (descriptor.size > MAX_LAYER_BYTES) continue;
      const bytes = await client.getBlob(repository, descriptor.digest, MAX_LAYER_BYTES);
      layers.push({ source: `${source} layer ${i}`, descriptor, bytes });
    }
  }
  return layers;
}
