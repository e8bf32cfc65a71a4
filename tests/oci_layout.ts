/**
 * Builds test images as OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/…`)
 * without any network or container tooling, so clients such as skopeo can push them with an
 * `oci:DIR:TAG` reference. Layers are real gzip-compressed tar archives of random bytes, and the
 * config's `rootfs.diff_ids` match them, so format conversions (e.g. to Docker schema 2) work.
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** OCI media types used by the layouts. */
export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** A content descriptor as it appears in manifests and indexes. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** An image written into a layout: its manifest bytes and every blob it references. */
export interface LayoutImage {
  /** Descriptor of the manifest (digest, size, media type, platform if any). */
  descriptor: Descriptor;
  /** The exact manifest bytes. */
  manifest: Uint8Array;
  /** Config and layer descriptors, config first. */
  blobs: Descriptor[];
}

/** An index written into a layout, with its child images. */
export interface LayoutIndex {
  descriptor: Descriptor;
  index: Uint8Array;
  images: LayoutImage[];
}

/** Options of {@link writeImage}. */
export interface ImageOptions {
  /** Sizes in bytes of the random file inside each layer (one layer per entry). */
  layerSizes?: number[];
  architecture?: string;
  os?: string;
}

/** `sha256:<hex>` of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Path of a blob inside a layout directory. */
export function blobPath(dir: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return join(dir, "blobs", algorithm, hex);
}

/** Creates an empty layout (`oci-layout` and an empty `index.json`) in `dir`. */
export async function initLayout(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "oci-layout"),
    JSON.stringify({ imageLayoutVersion: "1.0.0" }),
  );
  await writeIndexJson(dir, []);
}

/** Writes `bytes` as a blob of the layout and returns its digest. */
export async function writeBlob(dir: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256(bytes);
  await Deno.writeFile(blobPath(dir, digest), bytes);
  return digest;
}

/**
 * Writes a single-platform image (config, layers, manifest) into the layout. It is not tagged;
 * pass its descriptor to {@link tagLayout}.
 */
export async function writeImage(dir: string, options: ImageOptions = {}): Promise<LayoutImage> {
  const { layerSizes = [4096], architecture = "amd64", os = "linux" } = options;
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of layerSizes.entries()) {
    const tar = tarArchive(`layer${i}/data.bin`, randomBytes(size));
    diffIds.push(sha256(tar));
    const gz = gzipSync(tar, { level: 1 });
    layers.push({
      mediaType: MEDIA_TYPES.layer,
      digest: await writeBlob(dir, gz),
      size: gz.length,
    });
  }
  const configBytes = encodeJson({
    created: new Date().toISOString(),
    architecture,
    os,
    config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/true"] },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: diffIds.map(() => ({ created_by: "wharf test layer" })),
  });
  const config: Descriptor = {
    mediaType: MEDIA_TYPES.config,
    digest: await writeBlob(dir, configBytes),
    size: configBytes.length,
  };
  const manifest = encodeJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config,
    layers,
  });
  return {
    descriptor: {
      mediaType: MEDIA_TYPES.manifest,
      digest: await writeBlob(dir, manifest),
      size: manifest.length,
      platform: { architecture, os },
    },
    manifest,
    blobs: [config, ...layers],
  };
}

/** Writes an image index over `images` (each child descriptor keeps its platform). */
export async function writeIndex(dir: string, images: LayoutImage[]): Promise<LayoutIndex> {
  const index = encodeJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: images.map((image) => image.descriptor),
  });
  return {
    descriptor: {
      mediaType: MEDIA_TYPES.index,
      digest: await writeBlob(dir, index),
      size: index.length,
    },
    index,
    images,
  };
}

/** Points `index.json` of the layout at `descriptor` under the reference name `tag`. */
export async function tagLayout(dir: string, tag: string, descriptor: Descriptor): Promise<void> {
  const current = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  const entries = (current.manifests as Descriptor[]).filter((d) =>
    d.annotations?.["org.opencontainers.image.ref.name"] !== tag
  );
  const { platform: _platform, ...plain } = descriptor;
  entries.push({ ...plain, annotations: { "org.opencontainers.image.ref.name": tag } });
  await writeIndexJson(dir, entries);
}

/** Reads the descriptor tagged `tag` from a layout's `index.json`, or `undefined`. */
export async function readTag(dir: string, tag: string): Promise<Descriptor | undefined> {
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  return (index.manifests as Descriptor[]).find((d) =>
    d.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
}

async function writeIndexJson(dir: string, manifests: Descriptor[]): Promise<void> {
  await Deno.writeTextFile(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests }),
  );
}

function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let off = 0; off < size; off += 1 << 20) {
    randomFillSync(bytes, off, Math.min(1 << 20, size - off));
  }
  return bytes;
}

/** A ustar archive holding one regular file. */
function tarArchive(name: string, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const put = (offset: number, length: number, text: string) => {
    header.set(new TextEncoder().encode(text).subarray(0, length), offset);
  };
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, "0");
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(data.length, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, "        "); // checksum is computed with this field as spaces
  put(156, 1, "0");
  put(257, 6, "ustar");
  put(263, 2, "00");
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  put(148, 8, `${octal(checksum, 7)}\0 `);
  const padded = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  out.set(header, 0);
  out.set(data, 512);
  return out;
}
