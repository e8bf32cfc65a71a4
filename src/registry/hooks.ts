/**
 * The events the registry emits around manifests, and the interface of whoever listens (the
 * plugin host). The registry only knows this interface, never plugins.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { ParsedManifest } from "../oci/manifest.ts";
import type { Reference } from "../oci/names.ts";

/** A manifest that is being or was pushed. */
export interface ManifestEvent {
  repository: string;
  digest: Digest;
  mediaType: string;
  /** The exact bytes. */
  content: Uint8Array;
  /** What the registry parsed from them: blobs, child manifests, subject, artifact type. */
  manifest: ParsedManifest;
  /** The tag of the push, when pushed by tag. */
  tag?: string;
}

/** Who asks for a manifest. */
export interface Caller {
  /** The authenticated user, or null for anonymous callers. */
  user: string | null;
  /** True when the caller may push to the repository (signers are exempt from pull policy). */
  canPush: boolean;
}

/** A manifest about to be served. */
export interface PullEvent {
  repository: string;
  reference: Reference;
  digest: Digest;
  mediaType: string;
  caller: Caller;
}

/** A manifest removed from a repository. */
export interface DeleteEvent {
  repository: string;
  digest: Digest;
}

/** Listeners of registry events. Rejections are `RegistryError`s; other failures are contained. */
export interface RegistryHooks {
  beforePush(event: ManifestEvent): Promise<void>;
  pushed(event: ManifestEvent): Promise<void>;
  beforePull(event: PullEvent): Promise<void>;
  deleted(event: DeleteEvent): Promise<void>;
}

/** No listeners. */
export const NO_HOOKS: RegistryHooks = {
  beforePush: () => Promise.resolve(),
  pushed: () => Promise.resolve(),
  beforePull: () => Promise.resolve(),
  deleted: () => Promise.resolve(),
};
