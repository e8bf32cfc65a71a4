/**
 * HTTP authentication: reads `Authorization`, sets what the request may do, builds the
 * `WWW-Authenticate` challenges clients need, and serves the Docker token endpoint (`/token`).
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { RegistryError } from "../oci/errors.ts";
import { type Authenticator, isLoopback } from "../auth/authenticator.ts";
import { formatScope, parseScopes } from "../auth/scope.ts";
import type { Action } from "../registry/access.ts";
import type { AppEnv, RequestAuth } from "./context.ts";

/** Where the token endpoint lives, on the registry's own host:port. */
export const TOKEN_PATH = "/token";

/** Settings of the challenges. */
export interface ChallengeOptions {
  /** `service` of Bearer challenges and token audience. */
  service: string;
  /** Token realm; by default built from the request's own scheme and Host. */
  realm?: string;
}

function remoteAddress(c: Context<AppEnv>): string {
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return info?.remoteAddr?.hostname ?? "";
}

/** The `WWW-Authenticate` value for this registry, with an optional scope and error. */
function challenge(
  c: Context<AppEnv>,
  authenticator: Authenticator,
  options: ChallengeOptions,
  scope?: string,
  error?: string,
): string {
  if (authenticator.mode === "basic") return `Basic realm="wharf"`;
  const realm = options.realm ?? new URL(TOKEN_PATH, c.req.url).href;
  let value = `Bearer realm="${realm}",service="${options.service}"`;
  if (scope) value += `,scope="${scope}"`;
  if (error) value += `,error="${error}"`;
  return value;
}

function unauthorized(
  message: string,
  header: string | null,
  detail?: unknown,
): RegistryError {
  return new RegistryError("UNAUTHORIZED", message, {
    detail,
    headers: header ? { "WWW-Authenticate": header } : {},
  });
}

/** Middleware that authenticates every request and sets `c.var.auth`. */
export function authMiddleware(
  authenticator: Authenticator,
  options: ChallengeOptions,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.path === TOKEN_PATH) return await next();
    const result = await authenticator.authenticate(
      c.req.header("authorization"),
      remoteAddress(c),
    );
    if (result.kind === "invalid") {
      throw unauthorized(
        result.reason === "token" ? "invalid or expired token" : "invalid credentials",
        authenticator.mode === "open" ? null : challenge(
          c,
          authenticator,
          options,
          undefined,
          result.reason === "token" ? "invalid_token" : undefined,
        ),
      );
    }
    const access = authenticator.requestAccess(result);
    const rules = authenticator.accessFor(result.identity);
    const auth: RequestAuth = {
      access,
      user: result.identity.user,
      // Repositories listed in the catalog: those the caller's identity may pull.
      catalog() {
        const granted = result.kind !== "bearer" ||
          result.grants.some((g) => g.type === "registry" && g.name === "catalog");
        if (granted) return rules;
        throw unauthorized(
          "token does not grant catalog access",
          challenge(c, authenticator, options, "registry:catalog:*", "insufficient_scope"),
        );
      },
      deny(repository: string, action: Action): RegistryError {
        const detail = [{ Type: "repository", Name: repository, Action: action }];
        if (authenticator.mode === "open") {
          return new RegistryError(
            "DENIED",
            result.identity.loopback
              ? `${action} is not allowed on ${repository}`
              : `anonymous ${action} is allowed only from loopback; configure auth to open the registry`,
            { detail },
          );
        }
        const scope = formatScope({
          type: "repository",
          name: repository,
          actions: action === "pull" ? ["pull"] : ["pull", action],
        });
        if (result.kind === "bearer" && rules.can(repository, action)) {
          return unauthorized(
            "token does not grant this access",
            challenge(c, authenticator, options, scope, "insufficient_scope"),
            detail,
          );
        }
        // An anonymous token (clients fetch one before trying) must be challenged like no token.
        if (result.identity.user === null) {
          return unauthorized(
            "authentication required",
            challenge(c, authenticator, options, scope),
            detail,
          );
        }
        return new RegistryError(
          "DENIED",
          `${action} on ${repository} is not allowed for this user`,
          { detail },
        );
      },
    };
    c.set("auth", auth);
    // With any login configured, `/v2/` must challenge anonymous callers: clients read the
    // challenge only there, even where anonymous pulls are allowed.
    if (
      authenticator.mode !== "open" && result.kind === "anonymous" &&
      (c.req.path === "/v2/" || c.req.path === "/v2")
    ) {
      throw unauthorized("authentication required", challenge(c, authenticator, options));
    }
    await next();
  };
}

/** Registers `GET /token` (Docker token flow); `POST` answers 404 so clients fall back to GET. */
export function tokenRoutes(app: Hono<AppEnv>, authenticator: Authenticator): void {
  app.get(TOKEN_PATH, async (c) => {
    const address = remoteAddress(c);
    const header = c.req.header("authorization");
    let user: string | null = null;
    if (header) {
      const [scheme, value = ""] = header.split(" ", 2);
      user = /^basic$/i.test(scheme) ? await authenticator.checkPassword(value, address) : null;
      if (user === null) {
        throw unauthorized("invalid credentials", `Basic realm="wharf"`);
      }
    }
    const identity = { user, loopback: isLoopback(address) };
    const requested = c.req.queries("scope")?.flatMap(parseScopes) ?? [];
    const grants = authenticator.grant(identity, requested);
    const issued = await authenticator.issueToken(identity, grants);
    return c.json({
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    });
  });
  app.post(TOKEN_PATH, () => {
    throw new RegistryError("UNSUPPORTED", "OAuth2 token requests are not supported; use GET", {
      status: 404,
    });
  });
}
