/**
 * Small HTTP helpers for integration tests: push blobs and manifests to a registry the way
 * clients do, and build minimal images. Plain `fetch`, no registry code.
 * @module
 */
import { createHash } from "node:crypto";

/** `sha256:<hex>` of bytes. */
export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Random bytes of any length (crypto.getRandomValues caps at 64 KiB per call). */
export function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, length)));
  }
  return bytes;
}

/** Pushes a blob by POST + PUT and returns its digest; throws on any non-201. */
export async function pushBlob(
  base: string,
  repo: string,
  bytes: Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST", headers });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const location = new URL(start.headers.get("location")!, base);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: bytes, headers });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${text}`);
  return digest;
}

/** A descriptor for bytes of a media type. */
export function descriptor(mediaType: string, bytes: Uint8Array) {
  return { mediaType, digest: sha256(bytes), size: bytes.length };
}

/** Pushes manifest bytes under a reference; returns the response (body consumed) and its text. */
export async function putManifest(
  base: string,
  repo: string,
  reference: string,
  bytes: Uint8Array<ArrayBuffer> | string,
  mediaType = "application/vnd.oci.image.manifest.v1+json",
  headers: Record<string, string> = {},
): Promise<{ response: Response; text: string }> {
  const response = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    method: "PUT",
    headers: { ...headers, "Content-Type": mediaType },
    body: bytes,
  });
  return { response, text: await response.text() };
}

/** A pushed image: its manifest bytes and digest. */
export interface PushedImage {
  manifest: Uint8Array<ArrayBuffer>;
  digest: string;
  layers: string[];
  config: string;
}

/** Pushes a small OCI image (config + `layers` random layers) and tags it. */
export async function pushImage(
  base: string,
  repo: string,
  tag: string,
  options: {
    layers?: number;
    layerSize?: number;
    extra?: Record<string, unknown>;
    headers?: Record<string, string>;
  } = {},
): Promise<PushedImage> {
  const headers = options.headers ?? {};
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  );
  const configDigest = await pushBlob(base, repo, config, headers);
  const layers = [];
  for (let i = 0; i < (options.layers ?? 2); i++) {
    const layer = randomBytes(options.layerSize ?? 1024);
    await pushBlob(base, repo, layer, headers);
    layers.push(descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer));
  }
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: descriptor("application/vnd.oci.image.config.v1+json", config),
    layers,
    ...options.extra,
  }));
  const { response, text } = await putManifest(base, repo, tag, manifest, undefined, headers);
  if (response.status !== 201) throw new Error(`PUT manifest: ${response.status} ${text}`);
  return {
    manifest,
    digest: sha256(manifest),
    layers: layers.map((l) => l.digest),
    config: configDigest,
  };
}

/** The first error code of an OCI error body. */
export async function errorCode(response: Response): Promise<string | undefined> {
  const body = await response.json();
  return body?.errors?.[0]?.code;
}
