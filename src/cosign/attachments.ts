/**
 * The OCI images cosign stores next to an image: `sha256-<hex>.sig` (signatures), `.att`
 * (attestations) and `.sbom` (SBOMs) in legacy tag mode, and the same images pushed by digest
 * with `subject` + `artifactType` in OCI 1.1 referrers mode (cosign v2
 * `--registry-referrers-mode=oci-1-1`). Pure: builds bytes, uploads nothing.
 * @module
 */
import { digestOf } from "../oci/digest.ts";
import { OCI_MANIFEST } from "../oci/media_types.ts";

/** Layer media type of a simple-signing signature. */
export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
/** Layer media type of an attestation (DSSE envelope). */
export const DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";
/** Config media type of legacy attachment images (ggcr's empty image). */
export const OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json";
/** Layer annotation holding the base64 signature (`""` on attestations). */
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
/** Layer annotation naming an attestation's predicate type. */
export const PREDICATE_TYPE_ANNOTATION = "predicateType";

/** The three kinds of cosign attachment; also the legacy tag suffix. */
export type AttachmentKind = "sig" | "att" | "sbom";

/** `artifactType` (and config media type) of each kind in referrers mode. */
export const ARTIFACT_TYPES: Record<AttachmentKind, string> = {
  sig: "application/vnd.dev.cosign.artifact.sig.v1+json",
  att: "application/vnd.dev.cosign.artifact.att.v1+json",
  sbom: "application/vnd.dev.cosign.artifact.sbom.v1+json",
};

/** Most layers cosign keeps in one attachment image (`AppendSignatures`). */
export const MAX_ATTACHMENT_LAYERS = 1000;

/** A content descriptor, fields in the order ggcr writes them. */
export interface Descriptor {
  mediaType: string;
  size: number;
  digest: string;
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** A blob to upload with its descriptor. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** A layer to add: its bytes, media type and annotations. */
export interface NewLayer {
  mediaType: string;
  bytes: Uint8Array;
  annotations?: Record<string, string>;
}

/** Options of {@link buildAttachmentImage}. */
export interface AttachmentImageOptions {
  kind: AttachmentKind;
  /** Layers of the attachment image already in the registry (legacy append); kept first. */
  existingLayers?: Descriptor[];
  /** Layers to add; one that equals an existing layer (digest and annotations) is skipped. */
  add: NewLayer[];
  /** Referrers mode: the manifest this attachment refers to. */
  subject?: Descriptor;
}

/** An attachment image ready to push: blobs first, then the manifest. */
export interface AttachmentImage {
  manifest: Uint8Array;
  mediaType: typeof OCI_MANIFEST;
  digest: string;
  config: Blob;
  /** Only the layers that were not in the registry already. */
  newLayers: Blob[];
  /** Every layer descriptor of the manifest. */
  layers: Descriptor[];
}

/**
 * The legacy tag of an attachment: `sha256:<hex>` → `sha256-<hex>.<kind>`.
 *
 * @example
 * ```ts
 * attachmentTag("sha256:ab…", "sig"); // "sha256-ab….sig"
 * ```
 */
export function attachmentTag(digest: string, kind: AttachmentKind | ""): string {
  const tag = digest.replace(":", "-");
  return kind ? `${tag}.${kind}` : tag;
}

/**
 * Builds the attachment image as cosign does: an OCI manifest whose config is ggcr's empty image
 * config with one `rootfs.diff_ids` entry per layer, and one uncompressed layer per signature,
 * attestation or SBOM. With `existingLayers` the new layers are appended (cosign
 * `AppendSignatures`, c/image likewise); with `subject` the image is the referrers-mode variant
 * (config media type and `artifactType` = the cosign artifact type, `subject` set).
 */
export function buildAttachmentImage(options: AttachmentImageOptions): AttachmentImage {
  const layers: Descriptor[] = [...(options.existingLayers ?? [])];
  const newLayers: Blob[] = [];
  for (const layer of options.add) {
    const descriptor: Descriptor = {
      mediaType: layer.mediaType,
      size: layer.bytes.length,
      digest: digestOf(layer.bytes),
      ...(layer.annotations ? { annotations: layer.annotations } : {}),
    };
    if (layers.some((existing) => sameLayer(existing, descriptor))) continue;
    layers.push(descriptor);
    newLayers.push({ descriptor, bytes: layer.bytes });
  }
  if (layers.length > MAX_ATTACHMENT_LAYERS) {
    throw new Error(`attachment image would have ${layers.length} layers (max 1000)`);
  }
  const configBytes = encode({
    architecture: "",
    created: "0001-01-01T00:00:00Z",
    history: layers.map(() => ({ created: "0001-01-01T00:00:00Z" })),
    os: "",
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
    config: {},
  });
  const artifactType = options.subject ? ARTIFACT_TYPES[options.kind] : undefined;
  const config: Blob = {
    descriptor: {
      mediaType: artifactType ?? OCI_CONFIG_MEDIA_TYPE,
      size: configBytes.length,
      digest: digestOf(configBytes),
    },
    bytes: configBytes,
  };
  const manifest = encode({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(artifactType ? { artifactType } : {}),
    config: config.descriptor,
    layers,
    ...(options.subject
      ? {
        subject: {
          mediaType: options.subject.mediaType,
          size: options.subject.size,
          digest: options.subject.digest,
        },
      }
      : {}),
  });
  return {
    manifest,
    mediaType: OCI_MANIFEST,
    digest: digestOf(manifest),
    config,
    newLayers,
    layers,
  };
}

/** A signature layer of an attachment manifest, as listed in the manifest. */
export interface SignatureLayer {
  descriptor: Descriptor;
  /** Base64 signature from the annotation, if any. */
  signature?: string;
}

/**
 * The layer descriptors of an attachment manifest (JSON bytes), with their signature annotations;
 * throws when the bytes are not an image manifest.
 */
export function attachmentLayers(manifest: Uint8Array): SignatureLayer[] {
  const parsed = JSON.parse(new TextDecoder().decode(manifest));
  if (!Array.isArray(parsed?.layers)) throw new Error("attachment manifest has no layers");
  return (parsed.layers as Descriptor[]).map((descriptor) => ({
    descriptor,
    signature: descriptor.annotations?.[SIGNATURE_ANNOTATION],
  }));
}

function sameLayer(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.mediaType === b.mediaType &&
    JSON.stringify(sorted(a.annotations)) === JSON.stringify(sorted(b.annotations));
}

function sorted(record: Record<string, string> | undefined): [string, string][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
