/**
 * Which pushed manifests are SBOMs: cosign's legacy `sha256-<hex>.sbom` tags, and OCI 1.1
 * referrers whose artifact, config or layer type is an SBOM type. Pure.
 * @module
 */
import type { Digest, ParsedManifest } from "../../src/plugins/api.ts";
import type { Descriptor } from "../../src/oci/manifest.ts";
import { baseMediaType } from "../../src/oci/media_types.ts";
import type { SbomFormat } from "./document.ts";

/** SBOM media types (cosign `attach sbom` and the IANA registrations) with their format. */
export const SBOM_MEDIA_TYPES: Readonly<Record<string, SbomFormat>> = {
  "application/spdx+json": "spdx",
  "text/spdx+json": "spdx",
  "application/vnd.cyclonedx+json": "cyclonedx",
  "application/vnd.syft+json": "syft",
  "text/spdx": "spdx",
  "text/spdx+xml": "spdx",
  "application/vnd.cyclonedx+xml": "cyclonedx",
  "application/vnd.cyclonedx": "cyclonedx",
};

/** SBOM media types whose documents are JSON (the ones the plugin reads). */
export const JSON_SBOM_MEDIA_TYPES: readonly string[] = [
  "application/spdx+json",
  "text/spdx+json",
  "application/vnd.cyclonedx+json",
  "application/vnd.syft+json",
];

/** Artifact type of cosign's OCI 1.1 SBOM attachments (`--registry-referrers-mode=oci-1-1`). */
export const COSIGN_SBOM_ARTIFACT = "application/vnd.dev.cosign.artifact.sbom.v1+json";

const LEGACY_TAG = /(?:^|[^0-9a-f])sha256-([0-9a-f]{64})\.sbom$/;

/** An SBOM manifest: the image it describes and the layer that holds the document. */
export interface SbomManifest {
  subject: Digest;
  /** How it was attached: a cosign `.sbom` tag or a referrer (`subject` field). */
  source: "tag" | "referrer";
  /** The layer holding the document. */
  layer: Descriptor;
  /** The format the media types announce, if they do. */
  format?: SbomFormat;
  /** True when the layer's media type is a JSON SBOM type (or unknown, so worth trying). */
  json: boolean;
}

/**
 * Tells whether a pushed manifest is an SBOM and where its document is; null when it is not
 * one (or has no layer to read).
 *
 * @example
 * ```ts
 * detectSbom(event.manifest, event.tag); // { subject: "sha256:…", source: "tag", layer, … }
 * ```
 */
export function detectSbom(manifest: ParsedManifest, tag?: string): SbomManifest | null {
  // Indexes have no layers and are never SBOMs here; foreign layers cannot be read.
  const layers = manifest.layers.filter((l) => !l.urls?.length);
  const legacy = tag?.match(LEGACY_TAG);
  let subject: Digest | undefined;
  let source: SbomManifest["source"];
  const artifactType = baseMediaType(manifest.artifactType);
  if (legacy) {
    subject = `sha256:${legacy[1]}` as Digest;
    source = "tag";
  } else if (
    manifest.subject &&
    (formatOf(artifactType) || artifactType === COSIGN_SBOM_ARTIFACT ||
      layers.some((l) => formatOf(l.mediaType)))
  ) {
    subject = manifest.subject.digest;
    source = "referrer";
  } else {
    return null;
  }
  if (layers.length === 0) return null;
  const layer = layers.find((l) => formatOf(l.mediaType)) ?? layers[0];
  const layerType = baseMediaType(layer.mediaType);
  const format = formatOf(layerType) ?? formatOf(artifactType);
  return {
    subject,
    source,
    layer,
    ...(format ? { format } : {}),
    json: JSON_SBOM_MEDIA_TYPES.includes(layerType) || !formatOf(layerType),
  };
}

/** The SBOM format a media type announces (parameters such as `version=1.5` ignored). */
export function formatOf(mediaType: string | undefined): SbomFormat | undefined {
  const type = baseMediaType(mediaType);
  return Object.hasOwn(SBOM_MEDIA_TYPES, type) ? SBOM_MEDIA_TYPES[type] : undefined;
}
