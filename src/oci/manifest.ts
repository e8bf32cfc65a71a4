/**
 * Parsing and validating manifests of the four accepted media types, and extracting what the
 * registry indexes from them: referenced blobs and manifests, `subject` and artifact type.
 * Pure: the registry checks the references against storage.
 * @module
 */
import { RegistryError } from "./errors.ts";
import { type Digest, parseDigest } from "./digest.ts";
import {
  baseMediaType,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  isIndexMediaType,
  MANIFEST_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./media_types.ts";

/** Largest manifest accepted on push (the spec's SHOULD-support figure, as distribution uses). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

/** Platform of an index entry. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** What the registry keeps about a parsed manifest. */
export interface ParsedManifest {
  mediaType: string;
  /** Config and layers (image manifests): must exist as blobs in the repository. */
  blobs: Descriptor[];
  /** Child manifests (indexes): must exist as manifests in the repository. */
  manifests: Descriptor[];
  /** The config of an image manifest. */
  config?: Descriptor;
  /** Every layer of an image manifest, foreign ones included, with their annotations. */
  layers: Descriptor[];
  /** The manifest this one refers to (signatures, SBOMs, …), if any. */
  subject?: Descriptor;
  /** `artifactType`, else the config media type of an image manifest (for the referrers API). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError("MANIFEST_INVALID", message, { detail });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw invalid(`${field} must be a map of strings`);
  }
  return value as Record<string, string>;
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw invalid(`${field} must be a descriptor object`);
  const { mediaType, digest, size, artifactType, annotations, platform, urls } = value;
  if (typeof mediaType !== "string" || mediaType === "") {
    throw invalid(`${field}.mediaType must be a non-empty string`);
  }
  if (typeof digest !== "string") throw invalid(`${field}.digest must be a string`);
  try {
    parseDigest(digest);
  } catch {
    throw invalid(`${field}.digest is not a valid digest`, { digest });
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${field}.size must be a non-negative integer`);
  }
  if (artifactType !== undefined && typeof artifactType !== "string") {
    throw invalid(`${field}.artifactType must be a string`);
  }
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === "string"))) {
    throw invalid(`${field}.urls must be a list of strings`);
  }
  if (platform !== undefined) {
    if (
      !isObject(platform) || typeof platform.architecture !== "string" ||
      typeof platform.os !== "string"
    ) {
      throw invalid(`${field}.platform must have architecture and os`);
    }
  }
  return {
    mediaType,
    digest: digest as Digest,
    size,
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(annotations !== undefined
      ? { annotations: stringMap(annotations, `${field}.annotations`) }
      : {}),
    ...(platform !== undefined ? { platform: platform as unknown as Platform } : {}),
    ...(urls !== undefined ? { urls: urls as string[] } : {}),
  };
}

function descriptors(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be a list`);
  return value.map((item, i) => descriptor(item, `${field}[${i}]`));
}

/**
 * Decides the media type of a pushed manifest from its `Content-Type` and its `mediaType`
 * field. Throws `MANIFEST_INVALID` for unknown or contradicting types and schema 1.
 */
export function resolveMediaType(
  contentType: string | null,
  body: Record<string, unknown>,
): string {
  const header = baseMediaType(contentType);
  const field = typeof body.mediaType === "string" ? body.mediaType : undefined;
  if (DOCKER_SCHEMA1.includes(header) || (field && DOCKER_SCHEMA1.includes(field))) {
    throw invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI");
  }
  if (field !== undefined && !MANIFEST_MEDIA_TYPES.includes(field)) {
    throw invalid(`unsupported manifest media type "${field}"`);
  }
  if (MANIFEST_MEDIA_TYPES.includes(header)) {
    if (field !== undefined && field !== header) {
      throw invalid(`Content-Type "${header}" does not match mediaType "${field}"`);
    }
    return header;
  }
  if (field !== undefined) return field;
  // OCI allows mediaType to be absent; tell an index from a manifest by its shape.
  if (Array.isArray(body.manifests)) return OCI_INDEX;
  if (isObject(body.config)) return OCI_MANIFEST;
  throw invalid("cannot tell the manifest's media type: set Content-Type or mediaType");
}

/**
 * Parses manifest bytes as pushed. Validates the JSON shape for the media type and returns
 * what must exist and what is indexed.
 *
 * @example
 * ```ts
 * const parsed = parseManifest(bytes, "application/vnd.oci.image.manifest.v1+json");
 * parsed.blobs; // config + layers
 * ```
 */
export function parseManifest(bytes: Uint8Array, contentType: string | null): ParsedManifest {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw invalid("manifest is not valid UTF-8 JSON");
  }
  if (!isObject(body)) throw invalid("manifest must be a JSON object");
  if (body.schemaVersion !== 2) throw invalid("schemaVersion must be 2");
  const mediaType = resolveMediaType(contentType, body);
  const annotations = stringMap(body.annotations, "annotations");
  const subject = body.subject === undefined ? undefined : descriptor(body.subject, "subject");
  if (body.artifactType !== undefined && typeof body.artifactType !== "string") {
    throw invalid("artifactType must be a string");
  }
  const declaredArtifactType = body.artifactType as string | undefined;

  if (isIndexMediaType(mediaType)) {
    const manifests = descriptors(body.manifests, "manifests");
    if (mediaType === DOCKER_MANIFEST_LIST) {
      for (const [i, m] of manifests.entries()) {
        if (!m.platform) throw invalid(`manifests[${i}].platform is required in a manifest list`);
      }
    }
    return {
      mediaType,
      blobs: [],
      manifests,
      layers: [],
      subject,
      artifactType: declaredArtifactType,
      annotations,
    };
  }

  const config = descriptor(body.config, "config");
  const layers = body.layers === undefined && mediaType === OCI_MANIFEST
    ? invalidLayers()
    : descriptors(body.layers, "layers");
  if (mediaType === DOCKER_MANIFEST && body.subject !== undefined) {
    throw invalid("subject is not allowed in a Docker schema 2 manifest");
  }
  // Foreign layers (with urls) are fetched by clients from elsewhere and need not exist here.
  const local = layers.filter((l) => !l.urls?.length);
  return {
    mediaType,
    blobs: [config, ...local],
    manifests: [],
    config,
    layers,
    subject,
    artifactType: declaredArtifactType ?? config.mediaType,
    annotations,
  };
}

function invalidLayers(): never {
  throw invalid("layers is required");
}
