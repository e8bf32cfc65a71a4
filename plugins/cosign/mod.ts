/**
 * The cosign plugin: finds cosign signatures — `sha256-<hex>.sig` tags (simple-signing layers
 * with `dev.cosignproject.cosign/signature`), OCI 1.1 referrers of cosign's referrers mode, and
 * cosign v3 sigstore bundles — checks each against the trusted keys of the repository, and
 * records the result in the artifact index.
 *
 * ```yaml
 * plugins:
 *   cosign:
 *     keys: [{ name: release, key: ./cosign.pub, repositories: ["**"] }]
 * ```
 * Transparency-log entries and keyless (Fulcio) certificates are not checked: only keys.
 * @module
 */
import {
  type ArtifactRecord,
  type Descriptor,
  type Digest,
  type ManifestEvent,
  type Plugin,
  type PluginContext,
  verifyEnvelope,
  verifySimpleSigning,
} from "../../src/plugins/api.ts";
import { loadTrustedKeys, type TrustedKey } from "../_trusted_keys.ts";

const SIG_TAG = /^sha256-([a-f0-9]{64})\.sig$/;
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";

/** The result for one signature layer. */
interface LayerResult {
  layer: Digest;
  status: ArtifactRecord["status"];
  key?: string;
  reason?: string;
}

const plugin: Plugin = {
  name: "cosign",
  apiVersion: 2,
  description:
    "indexes cosign signatures (.sig tags, referrers, v3 bundles) and verifies them with keys",

  async setup(ctx) {
    const keys = await loadTrustedKeys(ctx);
    ctx.on("manifest.pushed", (event) => indexSignature(ctx, keys, event));
    // Mirrors copy a subject's signatures with it: the legacy tag and both referrer forms.
    ctx.on("sync.attachments", (event) => [
      { kind: "tag", tag: `${event.digest.replace(":", "-")}.sig` },
      { kind: "referrers", artifactType: COSIGN_SIG_ARTIFACT },
      { kind: "referrers", artifactType: SIGSTORE_BUNDLE },
    ]);
  },
};

export default plugin;

/** What a pushed manifest signs, and how it was attached, or null when it is no signature. */
function signatureSubject(
  event: ManifestEvent,
): { subject: Digest; via: "tag" | "referrer" } | null {
  const tag = event.tag && SIG_TAG.exec(event.tag);
  if (tag) return { subject: `sha256:${tag[1]}` as Digest, via: "tag" };
  const subject = event.manifest.subject?.digest;
  if (!subject) return null;
  const type = event.manifest.artifactType;
  const layerTypes = event.manifest.layers.map((l) => l.mediaType);
  if (
    type === COSIGN_SIG_ARTIFACT || type === SIGSTORE_BUNDLE ||
    layerTypes.includes(SIMPLE_SIGNING) ||
    layerTypes.includes(SIGSTORE_BUNDLE)
  ) {
    return { subject, via: "referrer" };
  }
  return null;
}

async function indexSignature(ctx: PluginContext, keys: TrustedKey[], event: ManifestEvent) {
  const found = signatureSubject(event);
  if (!found) return;
  const { repository } = event;
  const trusted = keys.filter((k) => k.matches(repository));
  const results: LayerResult[] = [];
  for (const layer of event.manifest.layers) {
    if (layer.mediaType === SIMPLE_SIGNING || layer.annotations?.[SIGNATURE_ANNOTATION]) {
      results.push(await checkSimpleSigning(ctx, repository, layer, found.subject, trusted));
    } else if (layer.mediaType === SIGSTORE_BUNDLE) {
      results.push(await checkBundle(ctx, repository, layer, found.subject, trusted));
    }
  }
  if (results.length === 0) return;
  if (found.via === "tag") {
    // The .sig tag moved (a signature was appended): the previous manifest no longer counts.
    for (const old of await ctx.artifacts.list(repository, found.subject)) {
      if (old.plugin === "cosign" && old.detail?.via === "tag" && old.digest !== event.digest) {
        await ctx.artifacts.remove(repository, old.digest);
      }
    }
  }
  const verified = results.filter((r) => r.status === "verified");
  const status = verified.length > 0
    ? "verified"
    : results.some((r) => r.status === "invalid")
    ? "invalid"
    : "unverified";
  await ctx.artifacts.record({
    repository,
    subject: found.subject,
    digest: event.digest,
    kind: "signature",
    type: results.some((r) => r.reason === "bundle") ? "cosign-bundle" : "cosign",
    status,
    detail: {
      via: found.via,
      keys: [...new Set(verified.map((r) => r.key))],
      signatures: results,
    },
  });
  ctx.log.info("cosign signature indexed", { repository, subject: found.subject, status });
}

async function checkSimpleSigning(
  ctx: PluginContext,
  repository: string,
  layer: Descriptor,
  subject: Digest,
  keys: TrustedKey[],
): Promise<LayerResult> {
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
  if (!signature) {
    return { layer: layer.digest, status: "invalid", reason: "no signature annotation" };
  }
  if (keys.length === 0) {
    return {
      layer: layer.digest,
      status: "unverified",
      reason: "no trusted key for this repository",
    };
  }
  let payload: Uint8Array;
  try {
    payload = await ctx.content.readBlob(repository, layer.digest);
  } catch (err) {
    return {
      layer: layer.digest,
      status: "invalid",
      reason: `payload unreadable: ${(err as Error).message}`,
    };
  }
  const reasons: string[] = [];
  for (const key of keys) {
    const result = verifySimpleSigning(payload, signature, key.key, { imageDigest: subject });
    if (result.ok) return { layer: layer.digest, status: "verified", key: key.name };
    reasons.push(`${key.name}: ${result.reason}`);
  }
  return { layer: layer.digest, status: "unverified", reason: reasons.join("; ") };
}

/** cosign v3 bundles: a DSSE envelope whose in-toto statement names the subject digest. */
async function checkBundle(
  ctx: PluginContext,
  repository: string,
  layer: Descriptor,
  subject: Digest,
  keys: TrustedKey[],
): Promise<LayerResult> {
  let bundle: { dsseEnvelope?: unknown };
  try {
    bundle = JSON.parse(
      new TextDecoder().decode(await ctx.content.readBlob(repository, layer.digest)),
    );
  } catch {
    return { layer: layer.digest, status: "invalid", reason: "bundle is not JSON" };
  }
  if (!bundle.dsseEnvelope) {
    return { layer: layer.digest, status: "not-checked", reason: "bundle without DSSE envelope" };
  }
  const envelope = new TextEncoder().encode(JSON.stringify(bundle.dsseEnvelope));
  for (const key of keys) {
    const result = verifyEnvelope(envelope, key.key);
    if (!result.ok) continue;
    const statement = JSON.parse(new TextDecoder().decode(result.payload));
    const hex = subject.slice("sha256:".length);
    const names = (statement.subject ?? []).some((s: { digest?: { sha256?: string } }) =>
      s.digest?.sha256 === hex
    );
    if (names) return { layer: layer.digest, status: "verified", key: key.name, reason: "bundle" };
    return {
      layer: layer.digest,
      status: "invalid",
      reason: "bundle statement names another image",
    };
  }
  return { layer: layer.digest, status: "unverified", reason: "bundle" };
}
