/**
 * Authentication and authorisation of one registry, independent of HTTP: checks Basic
 * credentials and bearer tokens, and decides what an identity or a token may do.
 * @module
 */
import { isValidName } from "../oci/names.ts";
import type { Access, Action } from "../registry/access.ts";
import type { Htpasswd } from "./htpasswd.ts";
import { LoginLimiter } from "./login_limiter.ts";
import type { FailureCounts } from "../coordination/coordination.ts";
import { ACTIONS, type Identity } from "./rules.ts";
import type { ScopeEntry } from "./scope.ts";
import type { IssuedToken, TokenService } from "./tokens.ts";

/**
 * How callers authenticate: `open` (no credentials; anonymous rules only), `basic`
 * (htpasswd), or `token` (htpasswd behind Wharf's own Docker token endpoint).
 */
export type AuthMode = "open" | "basic" | "token";

/** The result of checking a request's credentials. */
export type Authentication =
  | { kind: "anonymous"; identity: Identity }
  | { kind: "basic"; identity: Identity }
  | { kind: "bearer"; identity: Identity; grants: ScopeEntry[] }
  | { kind: "invalid"; reason: "credentials" | "token" };

/** Everything the authenticator is built from. */
export interface AuthenticatorOptions {
  mode: AuthMode;
  policy: (identity: Identity) => Access;
  htpasswd?: Htpasswd;
  tokens?: TokenService;
  /** Where failed logins are counted (shared by every process); in memory when absent. */
  failures?: FailureCounts;
}

/** Checks credentials and computes access. */
export class Authenticator {
  readonly mode: AuthMode;
  readonly #options: AuthenticatorOptions;
  readonly #limiter: LoginLimiter;

  constructor(options: AuthenticatorOptions) {
    this.mode = options.mode;
    this.#options = options;
    this.#limiter = new LoginLimiter(options.failures);
  }

  /** Checks an `Authorization` header value (or its absence) from `address`. */
  async authenticate(header: string | undefined, address: string): Promise<Authentication> {
    const loopback = isLoopback(address);
    if (!header) return { kind: "anonymous", identity: { user: null, loopback } };
    const [scheme, value = ""] = header.split(" ", 2);
    if (/^basic$/i.test(scheme) && this.#options.htpasswd) {
      const user = await this.checkPassword(value, address);
      if (user === null) return { kind: "invalid", reason: "credentials" };
      return { kind: "basic", identity: { user, loopback } };
    }
    if (/^bearer$/i.test(scheme) && this.#options.tokens) {
      const claims = await this.#options.tokens.verify(value.trim());
      if (!claims) return { kind: "invalid", reason: "token" };
      return {
        kind: "bearer",
        identity: { user: claims.subject, loopback },
        grants: claims.access,
      };
    }
    return { kind: "invalid", reason: "credentials" };
  }

  /**
   * Verifies base64 `user:password`; returns the user or null. Failed attempts from one
   * address are slowed down.
   */
  async checkPassword(encoded: string, address: string): Promise<string | null> {
    const htpasswd = this.#options.htpasswd;
    if (!htpasswd) return null;
    const delay = await this.#limiter.delayFor(address);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(encoded.trim()), (c) => c.charCodeAt(0)),
      );
    } catch {
      await this.#limiter.failed(address);
      return null;
    }
    const colon = decoded.indexOf(":");
    const user = decoded.slice(0, colon);
    if (colon <= 0 || !await htpasswd.verify(user, decoded.slice(colon + 1))) {
      await this.#limiter.failed(address);
      return null;
    }
    await this.#limiter.succeeded(address);
    return user;
  }

  /** What an identity may do under the configured rules. */
  accessFor(identity: Identity): Access {
    return this.#options.policy(identity);
  }

  /** The access a request carries: a token's grants, or the rules for its identity. */
  requestAccess(authentication: Exclude<Authentication, { kind: "invalid" }>): Access {
    if (authentication.kind !== "bearer") return this.accessFor(authentication.identity);
    const grants = authentication.grants;
    return {
      can: (repository: string, action: Action) =>
        grants.some((g) =>
          g.type === "repository" && g.name === repository &&
          (g.actions.includes(action) || g.actions.includes("*"))
        ),
    };
  }

  /**
   * The grants for a token request: the intersection of what was asked with what the
   * identity may do (possibly empty, never an error, as the token spec says).
   */
  grant(identity: Identity, requested: ScopeEntry[]): ScopeEntry[] {
    const access = this.accessFor(identity);
    const grants: ScopeEntry[] = [];
    for (const scope of requested) {
      if (scope.type === "registry" && scope.name === "catalog") {
        grants.push({ type: "registry", name: "catalog", actions: ["*"] });
        continue;
      }
      if (scope.type !== "repository" || !isValidName(scope.name)) continue;
      const asked = scope.actions.includes("*") ? ACTIONS : scope.actions;
      const actions = ACTIONS.filter((a) => asked.includes(a) && access.can(scope.name, a));
      if (actions.length > 0) grants.push({ type: "repository", name: scope.name, actions });
    }
    return grants;
  }

  /** Signs a token for `identity` with `grants`. */
  async issueToken(identity: Identity, grants: ScopeEntry[]): Promise<IssuedToken> {
    if (!this.#options.tokens) throw new Error("token authentication is not enabled");
    return await this.#options.tokens.issue(identity.user, grants);
  }
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || /^::ffff:127\./i.test(address);
}
