/**
 * Manifests, tags and referrers of a repository: validated pushes of the exact bytes, reads by
 * tag or digest, deletes, tag listing and the referrers index.
 * @module
 */
import { type Digest, digestOf, parseDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { type Descriptor, MAX_MANIFEST_BYTES, parseManifest } from "../oci/manifest.ts";
import type { Reference } from "../oci/names.ts";
import { type Caller, NO_HOOKS, type RegistryHooks } from "./hooks.ts";
import type { PullThroughSlot } from "./pull_through.ts";
import type {
  MetadataStore,
  Page,
  Referrer,
  StoredManifest,
  TagCondition,
} from "../metadata/metadata_store.ts";

/** Result of a manifest push. */
export interface PushedManifest {
  digest: Digest;
  mediaType: string;
  subject?: Digest;
  /** False only when a `condition` on the tag no longer held: nothing was stored. */
  stored: boolean;
}

/** Manifests scoped to repositories. */
export class Manifests {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly hooks: RegistryHooks = NO_HOOKS,
    private readonly pullThrough: PullThroughSlot = {},
  ) {}

  /**
   * Stores manifest bytes under a tag or digest reference. The bytes must parse for their media
   * type, every referenced blob and child manifest must be in the repository, and a digest
   * reference must be the digest of the bytes. A `condition` (never a client's push) makes the
   * tag write a compare-and-set: see {@link TagCondition}.
   */
  async put(
    repository: string,
    reference: Reference,
    content: Uint8Array<ArrayBuffer>,
    contentType: string | null,
    condition?: TagCondition,
  ): Promise<PushedManifest> {
    if (content.length > MAX_MANIFEST_BYTES) {
      throw new RegistryError("MANIFEST_INVALID", "manifest exceeds 4 MiB", { status: 413 });
    }
    const algorithm = reference.kind === "digest"
      ? parseDigest(reference.digest).algorithm
      : "sha256";
    const digest = digestOf(content, algorithm);
    if (reference.kind === "digest" && reference.digest !== digest) {
      throw new RegistryError("DIGEST_INVALID", "manifest digest does not match its content", {
        detail: { expected: reference.digest, actual: digest },
      });
    }
    const parsed = parseManifest(content, contentType);
    await this.#checkReferences(repository, parsed.blobs, parsed.manifests);
    const tag = reference.kind === "tag" ? reference.tag : undefined;
    const event = {
      repository,
      digest,
      mediaType: parsed.mediaType,
      content,
      manifest: parsed,
      tag,
    };
    await this.hooks.beforePush(event);
    const stored = await this.metadata.putManifest(
      repository,
      {
        digest,
        mediaType: parsed.mediaType,
        size: content.length,
        content,
        artifactType: parsed.artifactType,
        subject: parsed.subject?.digest,
        annotations: parsed.annotations,
        blobs: parsed.blobs.map((d) => d.digest),
        manifests: parsed.manifests.map((d) => d.digest),
      },
      tag,
      condition,
    );
    if (stored) await this.hooks.pushed(event);
    return { digest, mediaType: parsed.mediaType, subject: parsed.subject?.digest, stored };
  }

  async #checkReferences(
    repository: string,
    blobs: Descriptor[],
    manifests: Descriptor[],
  ): Promise<void> {
    const missing = [
      ...await this.metadata.missingBlobs(repository, blobs.map((d) => d.digest)),
      ...await this.metadata.missingManifests(repository, manifests.map((d) => d.digest)),
    ];
    if (missing.length > 0) {
      throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references unknown content", {
        detail: { digests: [...new Set(missing)] },
      });
    }
    for (const blob of blobs) {
      const size = await this.metadata.linkedBlobSize(repository, blob.digest);
      if (size !== blob.size) {
        throw new RegistryError("MANIFEST_INVALID", "descriptor size differs from the blob's", {
          detail: { digest: blob.digest, declared: blob.size, stored: size },
        });
      }
    }
  }

  /**
   * A manifest by tag or digest; throws `MANIFEST_UNKNOWN`. With a `caller`, pull policy hooks
   * run first and may refuse.
   */
  async get(repository: string, reference: Reference, caller?: Caller): Promise<StoredManifest> {
    let manifest = reference.kind === "digest"
      ? await this.metadata.getManifest(repository, reference.digest)
      : await this.metadata.getTaggedManifest(repository, reference.tag);
    // Only a pull (with a caller) reaches out to a pull-through upstream.
    const source = caller ? this.pullThrough.source : undefined;
    if (!manifest) {
      manifest = await source?.manifest(repository, reference) ?? null;
    } else if (source && reference.kind === "tag") {
      manifest = await source.refreshTag(repository, reference.tag, manifest);
    }
    if (!manifest) throw manifestUnknown(reference);
    if (caller) {
      await this.hooks.beforePull({
        repository,
        reference,
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        caller,
      });
    }
    return manifest;
  }

  /** Untags (tag reference) or removes a manifest and its tags (digest reference). */
  async delete(repository: string, reference: Reference): Promise<void> {
    const deleted = reference.kind === "tag"
      ? await this.metadata.deleteTag(repository, reference.tag)
      : await this.metadata.deleteManifest(repository, reference.digest);
    if (!deleted) throw manifestUnknown(reference);
    if (reference.kind === "digest") {
      await this.hooks.deleted({ repository, digest: reference.digest });
    }
  }

  /** Tells listeners that garbage collection removed a manifest from a repository. */
  async forgotten(repository: string, digest: Digest): Promise<void> {
    await this.hooks.deleted({ repository, digest });
  }

  /** A page of sorted tags; throws `NAME_UNKNOWN` for a repository never written to. */
  async tags(repository: string, options: { last?: string; limit: number }): Promise<Page<string>> {
    if (!await this.metadata.repositoryExists(repository)) {
      throw new RegistryError("NAME_UNKNOWN", "repository name not known to registry", {
        detail: { name: repository },
      });
    }
    return await this.metadata.listTags(repository, options);
  }

  /** Manifests in `repository` whose `subject` is `digest`; empty for unknown subjects. */
  async referrers(repository: string, digest: Digest, artifactType?: string): Promise<Referrer[]> {
    return await this.metadata.referrers(repository, digest, artifactType);
  }
}

function manifestUnknown(reference: Reference): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", "manifest unknown to registry", {
    detail: reference.kind === "tag" ? { tag: reference.tag } : { digest: reference.digest },
  });
}
