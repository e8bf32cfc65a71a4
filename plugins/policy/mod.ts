/**
 * The policy plugin: "repositories matching G may only be pulled if signed by key K / attested
 * with predicate P". A pull that fails a rule gets 403 `DENIED` naming the rule. Callers with
 * push rights on the repository are exempt, so that signers can sign; so are signatures,
 * attestations and other attachments themselves, so that clients can verify.
 *
 * ```yaml
 * plugins:
 *   policy:
 *     rules:
 *       - name: signed-production
 *         repositories: ["prod/**"]
 *         signedBy: [release]                               # cosign key names (any of them)
 *         attestedWith: ["https://slsa.dev/provenance/v1"]  # verified predicate types (each)
 * ```
 * The child manifests of a multi-platform index are allowed when the index passes.
 * @module
 */
import {
  type ArtifactRecord,
  type Digest,
  type Plugin,
  type PluginContext,
  type PullEvent,
  repositoryMatcher,
} from "../../src/plugins/api.ts";

const ATTACHMENT_TAG = /^sha256-[a-f0-9]{64}(\.[a-z]+)?$/;

interface Rule {
  name: string;
  matches: (repository: string) => boolean;
  signedBy: string[];
  attestedWith: string[];
}

const plugin: Plugin = {
  name: "policy",
  apiVersion: 2,
  description: "refuses pulls of images that lack the signatures or attestations a rule demands",

  setup(ctx) {
    const rules = parseRules(ctx.config.rules);
    if (rules.length === 0) return;
    ctx.on("manifest.beforePull", (event) => enforce(ctx, rules, event));
  },
};

export default plugin;

function parseRules(value: unknown): Rule[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error("plugins.policy.rules must be a list");
  return value.map((raw, i) => {
    const where = `plugins.policy.rules[${i}]`;
    const rule = raw as Record<string, unknown>;
    const list = (field: string) => {
      const v = rule[field] ?? [];
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
        throw new Error(`${where}.${field} must be a list of strings`);
      }
      return v as string[];
    };
    const repositories = list("repositories");
    const signedBy = list("signedBy");
    const attestedWith = list("attestedWith");
    if (repositories.length === 0) throw new Error(`${where}.repositories is required`);
    if (signedBy.length === 0 && attestedWith.length === 0) {
      throw new Error(`${where} needs signedBy or attestedWith`);
    }
    return {
      name: typeof rule.name === "string" ? rule.name : `rule ${i + 1}`,
      matches: repositoryMatcher(repositories),
      signedBy,
      attestedWith,
    };
  });
}

async function enforce(ctx: PluginContext, rules: Rule[], event: PullEvent): Promise<void> {
  const applicable = rules.filter((rule) => rule.matches(event.repository));
  if (applicable.length === 0 || event.caller.canPush) return;
  if (event.reference.kind === "tag" && ATTACHMENT_TAG.test(event.reference.tag)) return;
  if ((await ctx.artifacts.ofArtifact(event.repository, event.digest)).length > 0) return;
  for (const rule of applicable) {
    if (await satisfies(ctx, rule, event.repository, event.digest)) continue;
    const parents = await ctx.content.parents(event.repository, event.digest);
    const verdicts = await Promise.all(
      parents.map((parent) => satisfies(ctx, rule, event.repository, parent)),
    );
    if (verdicts.includes(true)) continue;
    throw ctx.error("DENIED", `policy "${rule.name}" refuses this image: ${missing(rule)}`, {
      rule: rule.name,
      digest: event.digest,
    });
  }
}

async function satisfies(
  ctx: PluginContext,
  rule: Rule,
  repository: string,
  digest: Digest,
): Promise<boolean> {
  const records = (await ctx.artifacts.list(repository, digest))
    .filter((r) => r.status === "verified");
  const signed = rule.signedBy.length === 0 ||
    records.some((r) => r.kind === "signature" && keysOf(r).some((k) => rule.signedBy.includes(k)));
  const attested = rule.attestedWith.every((predicate) =>
    records.some((r) => r.kind === "attestation" && r.type === predicate)
  );
  return signed && attested;
}

function keysOf(record: ArtifactRecord): string[] {
  const keys = record.detail?.keys ?? (record.detail?.key ? [record.detail.key] : []);
  return Array.isArray(keys) ? keys.map(String) : [];
}

function missing(rule: Rule): string {
  const parts = [];
  if (rule.signedBy.length) parts.push(`a verified signature by ${rule.signedBy.join(" or ")}`);
  if (rule.attestedWith.length) parts.push(`verified attestations ${rule.attestedWith.join(", ")}`);
  return `it needs ${parts.join(" and ")}`;
}
