/**
 * The registry domain assembled from its stores: blobs, uploads and manifests of repositories.
 * Knows OCI rules, not HTTP.
 * @module
 */
import type { BlobStore } from "../storage/blob_store.ts";
import type { MetadataStore } from "../metadata/metadata_store.ts";
import { Blobs } from "./blobs.ts";
import { Manifests } from "./manifests.ts";
import { type UploadLimits, Uploads } from "./uploads.ts";
import { KeyedLock, type Locks } from "../concurrency/keyed_lock.ts";
import type { PullThroughSlot } from "./pull_through.ts";
import { NO_HOOKS, type RegistryHooks } from "./hooks.ts";

/** Behaviour switches of the registry. */
export interface RegistryOptions {
  /** Cross-mount a blob from any readable repository when a mount names no `from`. */
  automaticMount: boolean;
  /** Allow DELETE of manifests, tags and blobs. */
  deleteEnabled: boolean;
  /** Size limits per repository (none when absent). */
  limits?: (repository: string) => UploadLimits;
  /** Blob digest locks; across processes when the stores are shared (in-process otherwise). */
  locks?: Locks;
}

/** The registry service. */
export interface Registry {
  /** Where a pull-through upstream is plugged in (by the mirroring service). */
  pullThrough: PullThroughSlot;
  /** Held per blob digest by upload commits, mounts and garbage collection. */
  blobLocks: Locks;
  blobs: Blobs;
  uploads: Uploads;
  manifests: Manifests;
  metadata: MetadataStore;
  store: BlobStore;
  options: RegistryOptions;
}

/** Builds the registry service over a blob store and a metadata store. */
export function createRegistry(
  store: BlobStore,
  metadata: MetadataStore,
  options: RegistryOptions,
  hooks: RegistryHooks = NO_HOOKS,
): Registry {
  const blobLocks = options.locks ?? new KeyedLock();
  const pullThrough: PullThroughSlot = {};
  return {
    pullThrough,
    blobLocks,
    blobs: new Blobs(store, metadata, pullThrough),
    uploads: new Uploads(store, metadata, {
      automaticMount: options.automaticMount,
      limits: options.limits ?? (() => ({})),
      blobLocks,
    }),
    manifests: new Manifests(metadata, hooks, pullThrough),
    metadata,
    store,
    options,
  };
}
