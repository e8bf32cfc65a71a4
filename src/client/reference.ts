/**
 * Image references as users type them: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, with Docker's
 * defaults for a missing registry (`docker.io`, `library/` for one-segment names) and tag
 * (`latest`).
 * @module
 */
import { isValidName, isValidTag } from "../oci/names.ts";
import { parseDigest } from "../oci/digest.ts";

/** Registry host Docker Hub images are named under. */
export const DOCKER_HUB = "docker.io";
/** Host that actually serves Docker Hub's distribution API. */
export const DOCKER_HUB_API = "registry-1.docker.io";

/** A parsed image reference. */
export interface ImageReference {
  /** `host[:port]` as named (e.g. `docker.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Repository path, e.g. `library/alpine`. */
  repository: string;
  /** Tag, when given or defaulted (no tag when a digest is given alone). */
  tag?: string;
  /** Digest, when given. */
  digest?: string;
}

/** A reference that cannot be parsed. */
export class ReferenceError extends Error {
  override name = "ReferenceError";
}

/**
 * Parses an image reference.
 *
 * @example
 * ```ts
 * parseImageReference("127.0.0.1:5000/team/app:v1");
 * // { registry: "127.0.0.1:5000", repository: "team/app", tag: "v1" }
 * parseImageReference("alpine"); // docker.io, library/alpine, latest
 * ```
 */
export function parseImageReference(text: string): ImageReference {
  let rest = text.trim();
  if (rest === "") throw new ReferenceError("empty image reference");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch {
      throw new ReferenceError(`invalid digest "${digest}" in "${text}"`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ReferenceError(`invalid tag "${tag}" in "${text}"`);
  }
  const slash = rest.indexOf("/");
  const first = slash >= 0 ? rest.slice(0, slash) : "";
  let registry: string;
  let repository: string;
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    repository = rest.slice(slash + 1);
  } else {
    registry = DOCKER_HUB;
    repository = rest;
  }
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (!isValidName(repository)) {
    throw new ReferenceError(`invalid repository name "${repository}" in "${text}"`);
  }
  if (!tag && !digest) tag = "latest";
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The manifest reference to fetch: the digest if any, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** `registry/repository`, the name cosign puts in `docker-reference`. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The reference as text: `registry/repository[:tag][@digest]`. */
export function formatImageReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ""}${
    ref.digest ? `@${ref.digest}` : ""
  }`;
}
