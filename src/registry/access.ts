/**
 * What the caller of a registry operation may do, decided by the auth layer and passed down so
 * that the domain can honour it (cross-repository mounts read only from readable repositories).
 * @module
 */

/** An action on a repository. */
export type Action = "pull" | "push" | "delete";

/** The caller's rights. */
export interface Access {
  /** True when the caller may perform `action` on `repository`. */
  can(repository: string, action: Action): boolean;
}

/** Everything allowed: the registry without authentication. */
export const ALLOW_ALL: Access = { can: () => true };
