/**
 * What travels with a mirrored image: cosign tags (`sha256-<hex>.sig|.att|.sbom`), the
 * referrers tag schema index (`sha256-<hex>`), OCI referrers (by artifact type; the client
 * falls back to the tag schema when the upstream has no referrers API), atomic signatures
 * through the signatures extension API, and whatever plugins ask for (`sync.attachments`).
 * Referrers of referrers (e.g. a signature of an SBOM) follow, two levels deep.
 * @module
 */
import type { RegistryClient } from "../client/registry_client.ts";
import type { Digest } from "../oci/digest.ts";
import type { AttachmentRequest, SyncSubjectEvent } from "../plugins/api.ts";
import type { Registry } from "../registry/registry.ts";
import type { Copier } from "./copy.ts";
import type { MirrorConfig } from "./schema.ts";

/** Deepest chain of referrers followed (subject → signature → its signature). */
const MAX_DEPTH = 2;

/** Where and how attachments of one repository are copied. */
export interface AttachmentContext {
  mirror: MirrorConfig;
  client: RegistryClient;
  registry: Registry;
  copier: Copier;
  upstreamRepository: string;
  repository: string;
  /** Every tag of the upstream repository (companion tags are looked up here). */
  upstreamTags: Set<string>;
  /** The upstream advertised `X-Registry-Supports-Signatures: 1`. */
  atomicSupported: boolean;
  /** Plugins' extra requests. */
  pluginRequests?: (event: SyncSubjectEvent) => Promise<AttachmentRequest[]>;
  /** The local signatures extension API (atomic signatures are stored by a plugin). */
  extensions?: (request: Request) => Promise<Response>;
  /** Companion tags copied or found unchanged, with their digests (for deleteMissing). */
  onTag?: (tag: string, digest: Digest) => void | Promise<void>;
}

/** Copies the attachments of `subject`; returns how many were newly written. */
export async function copyAttachments(
  ctx: AttachmentContext,
  subject: { digest: Digest; mediaType: string },
  depth = 0,
): Promise<number> {
  const { mirror } = ctx;
  const requests: AttachmentRequest[] = [];
  const hex = subject.digest.replace(":", "-");
  if (mirror.attachments.cosign) {
    for (const suffix of [".sig", ".att", ".sbom"]) {
      requests.push({ kind: "tag", tag: hex + suffix });
    }
  }
  const referrers = mirror.attachments.referrers;
  if (referrers === true) requests.push({ kind: "referrers" });
  else if (Array.isArray(referrers)) {
    for (const artifactType of referrers) requests.push({ kind: "referrers", artifactType });
  }
  if (ctx.pluginRequests) {
    requests.push(
      ...await ctx.pluginRequests({
        mirror: mirror.name,
        upstreamRepository: ctx.upstreamRepository,
        repository: ctx.repository,
        digest: subject.digest,
        mediaType: subject.mediaType,
      }),
    );
  }
  let written = 0;

  // Referrers first: the fallback index tag below lists them.
  const wantsAll = requests.some((r) => r.kind === "referrers" && !r.artifactType);
  const types = wantsAll ? [undefined] : [
    ...new Set(requests.flatMap((r) => r.kind === "referrers" ? [r.artifactType] : [])),
  ];
  if (referrers !== false || types.length > 0) {
    const seen = new Set<string>();
    for (const artifactType of types) {
      const found = await ctx.client.referrers(
        ctx.upstreamRepository,
        subject.digest,
        artifactType,
      );
      for (const referrer of found) {
        if (seen.has(referrer.digest)) continue;
        seen.add(referrer.digest);
        const copied = await ctx.copier.manifest(
          ctx.upstreamRepository,
          ctx.repository,
          referrer.digest,
        );
        if (copied.written) written++;
        if (depth < MAX_DEPTH) {
          written += await copyAttachments(ctx, copied, depth + 1);
        }
      }
    }
  }

  const tags = new Set(requests.flatMap((r) => r.kind === "tag" ? [r.tag] : []));
  if (mirror.attachments.cosign || referrers !== false) tags.add(hex);
  for (const tag of tags) {
    if (!ctx.upstreamTags.has(tag)) continue;
    const info = await ctx.client.headManifest(ctx.upstreamRepository, tag);
    if (!info) continue;
    const copied = await ctx.copier.manifest(ctx.upstreamRepository, ctx.repository, info.digest, {
      tag,
    });
    await ctx.onTag?.(tag, copied.digest);
    if (copied.written) written++;
  }

  if (mirror.attachments.atomic && ctx.atomicSupported && ctx.extensions) {
    written += await copyAtomicSignatures(ctx, subject.digest);
  }
  return written;
}

interface AtomicSignature {
  schemaVersion: number;
  type: string;
  name: string;
  content: string;
}

/** Copies atomic signatures of `digest` that the local extension API does not list yet. */
async function copyAtomicSignatures(ctx: AttachmentContext, digest: Digest): Promise<number> {
  const path = (repository: string) => `/extensions/v2/${repository}/signatures/${digest}`;
  const upstream = await ctx.client.getJson(ctx.upstreamRepository, path(ctx.upstreamRepository))
    .catch((err) => {
      // Manifests the extension does not know (e.g. attachments) answer 404.
      if ((err as { status?: number }).status === 404) return { signatures: [] };
      throw err;
    }) as { signatures?: AtomicSignature[] };
  const wanted = (upstream.signatures ?? []).filter((s) =>
    s.schemaVersion === 2 && s.type === "atomic"
  );
  if (wanted.length === 0) return 0;
  const url = `http://wharf.local${path(ctx.repository)}`;
  const listed = await ctx.extensions!(new Request(url));
  if (!listed.ok) throw new Error(`local signatures API answered ${listed.status}`);
  const present = new Set(
    ((await listed.json()).signatures as AtomicSignature[]).map((s) => s.content),
  );
  let written = 0;
  for (const signature of wanted) {
    if (present.has(signature.content)) continue;
    const put = await ctx.extensions!(
      new Request(url, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(signature),
      }),
    );
    if (put.status !== 201) {
      throw new Error(`atomic signature ${signature.name}: ${put.status} ${await put.text()}`);
    }
    written++;
  }
  return written;
}
