/**
 * The attestations plugin: finds in-toto attestations in DSSE envelopes
 * (`application/vnd.dsse.envelope.v1+json`) stored as cosign `sha256-<hex>.att` tags or as
 * OCI 1.1 referrers, indexes their predicate types, verifies the envelope signatures with the
 * trusted keys, and records one artifact per predicate type.
 *
 * ```yaml
 * plugins:
 *   attestations:
 *     keys: [{ name: release, key: ./cosign.pub, repositories: ["**"] }]
 * ```
 * @module
 */
import {
  type ArtifactRecord,
  type Digest,
  type ManifestEvent,
  type Plugin,
  type PluginContext,
  verifyEnvelope,
} from "../../src/plugins/api.ts";
import { loadTrustedKeys, type TrustedKey } from "../_trusted_keys.ts";

const ATT_TAG = /^sha256-([a-f0-9]{64})\.att$/;
const DSSE = "application/vnd.dsse.envelope.v1+json";
const MAX_ENVELOPE = 16 * 1024 * 1024;

const plugin: Plugin = {
  name: "attestations",
  apiVersion: 2,
  description:
    "indexes in-toto attestations (.att tags, referrers) and verifies their DSSE signatures",

  async setup(ctx) {
    const keys = await loadTrustedKeys(ctx);
    ctx.on("manifest.pushed", (event) => indexAttestations(ctx, keys, event));
    ctx.on("sync.attachments", (event) => [
      { kind: "tag", tag: `${event.digest.replace(":", "-")}.att` },
      { kind: "referrers", artifactType: DSSE },
    ]);
  },
};

export default plugin;

function attestationSubject(
  event: ManifestEvent,
): { subject: Digest; via: "tag" | "referrer" } | null {
  const tag = event.tag && ATT_TAG.exec(event.tag);
  if (tag) return { subject: `sha256:${tag[1]}` as Digest, via: "tag" };
  const subject = event.manifest.subject?.digest;
  if (subject && event.manifest.layers.some((l) => l.mediaType === DSSE)) {
    return { subject, via: "referrer" };
  }
  return null;
}

async function indexAttestations(ctx: PluginContext, keys: TrustedKey[], event: ManifestEvent) {
  const found = attestationSubject(event);
  if (!found) return;
  const { repository } = event;
  const trusted = keys.filter((k) => k.matches(repository));
  const byType = new Map<
    string,
    { status: ArtifactRecord["status"]; key?: string; reason?: string }
  >();
  for (const layer of event.manifest.layers.filter((l) => l.mediaType === DSSE)) {
    let bytes: Uint8Array;
    try {
      bytes = await ctx.content.readBlob(repository, layer.digest, MAX_ENVELOPE);
    } catch (err) {
      byType.set(`unreadable:${layer.digest}`, {
        status: "invalid",
        reason: (err as Error).message,
      });
      continue;
    }
    const result = check(bytes, found.subject, trusted);
    const previous = byType.get(result.predicateType);
    if (!previous || previous.status !== "verified") byType.set(result.predicateType, result);
  }
  if (found.via === "tag") {
    for (const old of await ctx.artifacts.list(repository, found.subject)) {
      if (
        old.plugin === "attestations" && old.digest !== event.digest && old.detail?.via === "tag"
      ) {
        await ctx.artifacts.remove(repository, old.digest);
      }
    }
  }
  for (const [predicateType, result] of byType) {
    await ctx.artifacts.record({
      repository,
      subject: found.subject,
      digest: event.digest,
      kind: "attestation",
      type: predicateType,
      status: result.status,
      detail: { via: found.via, key: result.key, reason: result.reason },
    });
  }
}

/** Verifies one envelope and reads its predicate type; subject must be named by the statement. */
function check(
  bytes: Uint8Array,
  subject: Digest,
  keys: TrustedKey[],
): { predicateType: string; status: ArtifactRecord["status"]; key?: string; reason?: string } {
  let envelope: { payload?: string };
  let statement: { predicateType?: string; subject?: { digest?: Record<string, string> }[] };
  try {
    envelope = JSON.parse(new TextDecoder().decode(bytes));
    statement = JSON.parse(atob(envelope.payload ?? ""));
  } catch {
    return {
      predicateType: "unknown",
      status: "invalid",
      reason: "not a DSSE envelope with JSON payload",
    };
  }
  const predicateType = typeof statement.predicateType === "string"
    ? statement.predicateType
    : "unknown";
  const hex = subject.slice("sha256:".length);
  if (!(statement.subject ?? []).some((s) => s.digest?.sha256 === hex)) {
    return { predicateType, status: "invalid", reason: "statement does not name this image" };
  }
  if (keys.length === 0) {
    return { predicateType, status: "unverified", reason: "no trusted key for this repository" };
  }
  for (const key of keys) {
    if (verifyEnvelope(bytes, key.key).ok) {
      return { predicateType, status: "verified", key: key.name };
    }
  }
  return { predicateType, status: "unverified", reason: "no trusted key verifies the envelope" };
}
