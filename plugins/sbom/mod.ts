/**
 * Built-in plugin `sbom`: finds SBOMs attached to images — cosign's legacy `sha256-<hex>.sbom`
 * tags and OCI 1.1 referrers of an SPDX, CycloneDX or Syft type — reads JSON documents, indexes
 * their packages, and answers which images contain a package:
 *
 * ```
 * GET /wharf/v1/plugins/sbom/packages?name=openssl[&version=3.0.13][&limit=100]
 * GET /wharf/v1/plugins/sbom/packages?purl=pkg:deb/debian/openssl@3.0.13
 * → {"images":[{"repository":"app","subject":"sha256:…","tags":["1.0"],"packages":[…]}],…}
 * ```
 *
 * Only repositories the caller may pull are listed. Each SBOM is also recorded in the artifact
 * index (`kind: "sbom"`, `status: "not-checked"`: an SBOM is not a signature; "invalid" when
 * its document cannot be read). A broken document never fails the push.
 *
 * Config (all optional):
 * ```yaml
 * plugins:
 *   sbom:
 *     maxBytes: 16777216   # larger documents are recorded but not indexed
 *     maxPackages: 100000  # packages kept per document
 * ```
 * @module
 */
import type {
  AttachmentRequest,
  Digest,
  ManifestEvent,
  Plugin,
  PluginContext,
} from "../../src/plugins/api.ts";
import { RegistryError } from "../../src/plugins/api.ts";
import { parseSbom, SbomError } from "./document.ts";
import {
  COSIGN_SBOM_ARTIFACT,
  detectSbom,
  JSON_SBOM_MEDIA_TYPES,
  type SbomManifest,
} from "./detect.ts";
import { type DocumentRow, type PackageQuery, SbomStore } from "./store.ts";

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_PACKAGES = 100_000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Tags that name attachments (cosign, referrers fallback), not images. */
const ATTACHMENT_TAG = /^sha256-[0-9a-f]{64}/;

const plugin: Plugin = {
  name: "sbom",
  apiVersion: 2,
  description: "indexes SBOMs (SPDX, CycloneDX) attached to images; finds images by package",

  async setup(ctx) {
    const maxBytes = positiveInteger(ctx.config.maxBytes, "maxBytes", DEFAULT_MAX_BYTES);
    const maxPackages = positiveInteger(
      ctx.config.maxPackages,
      "maxPackages",
      DEFAULT_MAX_PACKAGES,
    );
    const store = await SbomStore.open(ctx.db);

    ctx.on("manifest.pushed", async (event) => {
      if (event.tag && !ATTACHMENT_TAG.test(event.tag)) {
        await store.saveTag(event.repository, event.tag, event.digest);
      }
      const found = detectSbom(event.manifest, event.tag);
      if (!found) return;
      const row = await readDocument(ctx, event, found, { maxBytes, maxPackages });
      await store.saveDocument(row.document, row.format, row.packages);
      await ctx.artifacts.record(artifactOf(row.document));
      if (found.source === "tag") await replaceOlder(ctx, store, row.document);
    });

    ctx.on("manifest.deleted", (event) => store.forget(event.repository, event.digest));

    ctx.on("sync.attachments", (event): AttachmentRequest[] => {
      if (!event.digest.startsWith("sha256:")) return [];
      return [
        { kind: "tag", tag: `${event.digest.replace(":", "-")}.sbom` },
        { kind: "referrers", artifactType: COSIGN_SBOM_ARTIFACT },
        ...JSON_SBOM_MEDIA_TYPES.map((t): AttachmentRequest => ({
          kind: "referrers",
          artifactType: t,
        })),
      ];
    });

    ctx.routes((app) => {
      app.get("/packages", async (c) => {
        const query = packageQuery(c.req.query());
        const limit = limitOf(c.req.query("limit"));
        const allowed = new Map<string, boolean>();
        const mayPull = (repository: string) => {
          if (!allowed.has(repository)) {
            try {
              ctx.authorize(c, repository, "pull");
              allowed.set(repository, true);
            } catch {
              allowed.set(repository, false);
            }
          }
          return allowed.get(repository)!;
        };
        const images = [];
        let truncated = false;
        const page = 500;
        scan: for (let offset = 0;; offset += page) {
          const batch = await store.images(query, offset, page);
          for (const { repository, subject } of batch) {
            if (!mayPull(repository)) continue;
            if (images.length === limit) {
              truncated = true;
              break scan;
            }
            images.push({
              repository,
              subject,
              tags: await currentTags(ctx, store, repository, subject),
              packages: (await store.matches(query, repository, subject)).map((m) => ({
                name: m.name,
                version: m.version,
                purl: m.purl,
                format: m.format,
                sbom: m.sbom,
              })),
            });
          }
          if (batch.length < page) break;
        }
        return c.json({ query, images, truncated });
      });
    });
  },
};

export default plugin;

interface ReadResult {
  document: DocumentRow;
  format: string | null;
  packages: { name: string; version: string | null; purl: string | null }[];
}

/** Reads and parses the SBOM document; every failure becomes an "invalid" record. */
async function readDocument(
  ctx: PluginContext,
  event: ManifestEvent,
  found: SbomManifest,
  limits: { maxBytes: number; maxPackages: number },
): Promise<ReadResult> {
  const base = {
    repository: event.repository,
    subject: found.subject,
    sbom: event.digest,
    source: found.source,
  };
  const detail: Record<string, unknown> = {
    format: found.format ?? null,
    mediaType: found.layer.mediaType,
    source: found.source,
  };
  if (!found.json) {
    detail.indexed = false;
    detail.reason = "only JSON SBOMs are indexed";
    return {
      document: { ...base, status: "not-checked", detail },
      format: found.format ?? null,
      packages: [],
    };
  }
  if (found.layer.size > limits.maxBytes) {
    detail.indexed = false;
    detail.reason = `document is larger than ${limits.maxBytes} bytes`;
    return {
      document: { ...base, status: "not-checked", detail },
      format: found.format ?? null,
      packages: [],
    };
  }
  try {
    const bytes = await ctx.content.readBlob(event.repository, found.layer.digest, limits.maxBytes);
    const doc = parseSbom(bytes, { maxPackages: limits.maxPackages });
    Object.assign(detail, {
      format: doc.format,
      specVersion: doc.specVersion,
      packages: doc.packages.length,
      indexed: true,
      ...(doc.truncated ? { truncated: true } : {}),
    });
    return {
      document: { ...base, status: "not-checked", detail },
      format: doc.format,
      packages: doc.packages,
    };
  } catch (err) {
    if (!(err instanceof SbomError) && !(err instanceof RegistryError)) throw err;
    ctx.log.warn("SBOM not readable", {
      repository: event.repository,
      digest: event.digest,
      error: err.message,
    });
    detail.indexed = false;
    detail.error = err.message;
    return {
      document: { ...base, status: "invalid", detail },
      format: found.format ?? null,
      packages: [],
    };
  }
}

function artifactOf(row: DocumentRow) {
  return {
    repository: row.repository,
    subject: row.subject,
    digest: row.sbom,
    kind: "sbom",
    type: String(row.detail.format ?? row.detail.mediaType),
    status: row.status,
    detail: row.detail,
  };
}

/** A re-pushed cosign `.sbom` tag replaces the subject's earlier tagged SBOM. */
async function replaceOlder(
  ctx: PluginContext,
  store: SbomStore,
  current: DocumentRow,
): Promise<void> {
  const { repository, subject, sbom } = current;
  for (const old of await store.legacyDocuments(repository, subject, sbom)) {
    await store.removeDocument(repository, subject, old);
    await ctx.artifacts.remove(repository, old);
    // The same SBOM manifest may still be attached to other subjects: keep their records.
    for (const other of await store.documentsOf(repository, old)) {
      await ctx.artifacts.record(artifactOf(other));
    }
  }
}

/** Tags still pointing to `subject`; forgets the ones that moved or were deleted. */
async function currentTags(
  ctx: PluginContext,
  store: SbomStore,
  repository: string,
  subject: Digest,
): Promise<string[]> {
  const tags = [];
  for (const tag of await store.tagsOf(repository, subject)) {
    const manifest = await ctx.content.getManifest(repository, tag);
    if (manifest?.digest === subject) {
      tags.push(tag);
    } else {
      await store.removeTag(repository, tag);
    }
  }
  return tags;
}

function packageQuery(params: Record<string, string>): PackageQuery {
  const query: PackageQuery = {};
  for (const key of ["name", "purl", "version"] as const) {
    const value = params[key];
    if (value !== undefined && value !== "") query[key] = value;
  }
  if (query.name === undefined && query.purl === undefined) {
    throw badRequest('query parameter "name" or "purl" is required');
  }
  return query;
}

function limitOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > MAX_LIMIT) {
    throw new RegistryError("PAGINATION_NUMBER_INVALID", `limit must be 1…${MAX_LIMIT}`);
  }
  return limit;
}

function badRequest(message: string): RegistryError {
  return new RegistryError("UNSUPPORTED", message, { status: 400 });
}

function positiveInteger(value: unknown, key: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`plugins.sbom.${key} must be a positive integer`);
  }
  return value;
}
