/**
 * Scrub: re-hashes every stored blob and quarantines the ones whose bytes no longer match their
 * digest, unlinking them so that clients see them as missing and push them again.
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { Registry } from "./registry.ts";

/** What a scrub found. */
export interface ScrubReport {
  checked: number;
  bytes: number;
  corrupt: { digest: Digest; actual: Digest; repositories: string[] }[];
  durationMs: number;
}

/** Checks every blob; `quarantine: false` only reports. */
export async function scrub(
  registry: Registry,
  options: { quarantine?: boolean; onProgress?: (checked: number, bytes: number) => void } = {},
): Promise<ScrubReport> {
  const started = performance.now();
  const report: ScrubReport = { checked: 0, bytes: 0, corrupt: [], durationMs: 0 };
  for await (const blob of registry.store.listBlobs()) {
    const actual = await registry.store.rehash(blob.digest);
    report.checked++;
    report.bytes += blob.size;
    options.onProgress?.(report.checked, report.bytes);
    if (actual === blob.digest) continue;
    const repositories = await registry.metadata.repositoriesWithBlob(blob.digest);
    report.corrupt.push({ digest: blob.digest, actual, repositories });
    if (options.quarantine === false) continue;
    await registry.blobLocks.run(blob.digest, async () => {
      await registry.store.quarantine(blob.digest);
      for (const repository of repositories) {
        await registry.metadata.unlinkBlob(repository, blob.digest);
      }
    });
  }
  report.durationMs = Math.round(performance.now() - started);
  return report;
}
