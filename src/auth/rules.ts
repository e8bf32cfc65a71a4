/**
 * Access rules from the config: repository globs → users, groups or anonymous callers →
 * actions. Pure: decides what an identity may do, knows nothing of HTTP or tokens.
 * @module
 */
import { repositoryMatcher } from "../config/globs.ts";
import type { Access, Action } from "../registry/access.ts";

/** All repository actions; `*` in a scope or rule means these. */
export const ACTIONS: readonly Action[] = ["pull", "push", "delete"];

/** One access rule as written in the config. */
export interface AccessRule {
  /** Repository globs: `*` stays within one path segment, `**` spans several. */
  repositories: string[];
  /** User names, or `*` for any authenticated user. */
  users?: string[];
  groups?: string[];
  /** Also applies to callers without credentials. */
  anonymous?: boolean;
  actions: (Action | "*")[];
}

/** Who is asking. */
export interface Identity {
  /** The authenticated user, or null for an anonymous caller. */
  user: string | null;
  /** True when the request came from a loopback address. */
  loopback: boolean;
}

/** The rule set of a registry. */
export interface AccessPolicy {
  rules: AccessRule[];
  groups: Record<string, string[]>;
  /** Actions anonymous callers on loopback may perform on every repository. */
  loopbackAnonymous: Action[];
}

interface CompiledRule {
  matches: (repository: string) => boolean;
  applies: (identity: Identity, groups: Set<string>) => boolean;
  actions: Set<Action>;
}

/** Compiles a policy into a function from identity to {@link Access}. */
export function compilePolicy(policy: AccessPolicy): (identity: Identity) => Access {
  const rules: CompiledRule[] = policy.rules.map((rule) => ({
    matches: repositoryMatcher(rule.repositories),
    applies: (identity, groups) =>
      identity.user === null
        ? rule.anonymous === true
        : (rule.users ?? []).some((u) => u === "*" || u === identity.user) ||
          (rule.groups ?? []).some((g) => groups.has(g)),
    actions: new Set(rule.actions.includes("*") ? ACTIONS : rule.actions as Action[]),
  }));
  const loopback = new Set(policy.loopbackAnonymous);
  return (identity) => {
    const groups = new Set(
      Object.entries(policy.groups)
        .filter(([, members]) => identity.user !== null && members.includes(identity.user))
        .map(([group]) => group),
    );
    const applicable = rules.filter((rule) => rule.applies(identity, groups));
    return {
      can(repository, action) {
        if (identity.user === null && identity.loopback && loopback.has(action)) return true;
        return applicable.some((rule) => rule.actions.has(action) && rule.matches(repository));
      },
    };
  };
}
