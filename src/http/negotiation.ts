/**
 * Manifest content negotiation. Stored manifests are served as pushed and never converted;
 * a client that lists manifest types in `Accept` without the stored one gets "unknown", as
 * distribution answers, so that it does not receive a type it cannot parse.
 * @module
 */
import { baseMediaType, MANIFEST_MEDIA_TYPES } from "../oci/media_types.ts";

/** True when a manifest of `mediaType` may be served to a client sending `accept` headers. */
export function acceptsManifest(accept: string | null, mediaType: string): boolean {
  if (!accept) return true;
  const types = accept.split(",").map((part) => baseMediaType(part));
  if (types.some((t) => t === mediaType || t === "*/*" || t === "application/*")) return true;
  // Only a client that names manifest types has said what it cannot take.
  return !types.some((t) => MANIFEST_MEDIA_TYPES.includes(t));
}
