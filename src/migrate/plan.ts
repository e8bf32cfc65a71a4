/**
 * The order in which `wharf migrate` writes a repository's manifests so that the target's
 * checks pass and its plugins see what they expect: child manifests before their index,
 * subjects before what refers to them (OCI `subject`, or a cosign-style
 * `sha256-<hex>.sig|.att|.sbom` tag), each manifest with the tags that point at it.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { RepositorySnapshot } from "../metadata/metadata_store.ts";

/** One manifest to write, with what it needs in the repository first. */
export interface ManifestStep {
  digest: Digest;
  /** Config and layers: must be linked in the target repository. */
  blobs: Digest[];
  /** Child manifests (of an index): must be written before. */
  children: Digest[];
  /** The manifest this one is about (OCI subject or companion tag), when in the repository. */
  subject: Digest | null;
  /** Tags pointing at this manifest, sorted. */
  tags: string[];
}

const COMPANION_TAG = /^(sha256)-([a-f0-9]{64})\.(sig|att|sbom)$/;

/**
 * The subject a cosign-style companion tag names (`sha256-<hex>.sig` → `sha256:<hex>`), or null.
 *
 * @example
 * ```ts
 * companionSubject("sha256-ab…cd.sig"); // "sha256:ab…cd"
 * companionSubject("latest"); // null
 * ```
 */
export function companionSubject(tag: string): Digest | null {
  const match = COMPANION_TAG.exec(tag);
  return match ? `${match[1]}:${match[2]}` as Digest : null;
}

/**
 * The manifests of a repository in an order the target accepts: every step comes after its
 * children and its subject. Unrelated manifests keep the order they were pushed in.
 */
export function manifestOrder(snapshot: RepositorySnapshot): ManifestStep[] {
  const tagsOf = new Map<Digest, string[]>();
  for (const tag of [...snapshot.tags].sort((a, b) => compare(a.name, b.name))) {
    tagsOf.set(tag.digest, [...(tagsOf.get(tag.digest) ?? []), tag.name]);
  }
  const present = new Set(snapshot.manifests.map((m) => m.digest));
  const steps = new Map<Digest, ManifestStep>();
  for (const manifest of snapshot.manifests) {
    const tags = tagsOf.get(manifest.digest) ?? [];
    const subject = [manifest.subject, ...tags.map(companionSubject)]
      .find((d): d is Digest => d !== null && d !== manifest.digest && present.has(d)) ?? null;
    steps.set(manifest.digest, {
      digest: manifest.digest,
      blobs: [...manifest.blobs],
      children: [...manifest.children],
      subject,
      tags,
    });
  }

  const ordered: ManifestStep[] = [];
  const state = new Map<Digest, "visiting" | "done">();
  const visit = (digest: Digest) => {
    const step = steps.get(digest);
    if (!step || state.has(digest)) return; // absent, done, or a cycle (impossible by content)
    state.set(digest, "visiting");
    for (const child of step.children) visit(child);
    if (step.subject) visit(step.subject);
    state.set(digest, "done");
    ordered.push(step);
  };
  const byPush = [...snapshot.manifests].sort((a, b) =>
    a.pushedAt - b.pushedAt || compare(a.digest, b.digest)
  );
  for (const manifest of byPush) visit(manifest.digest);
  return ordered;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
