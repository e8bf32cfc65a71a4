/**
 * Client side of registry authentication: `WWW-Authenticate` challenges, Basic credentials and the
 * Docker token flow (`GET <realm>?service=…&scope=…`, distribution `docs/spec/auth/token.md`).
 * @module
 */

/** A username and password for a registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** One parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** `bearer` or `basic` (lowercased). */
  scheme: string;
  /** Parameters (`realm`, `service`, `scope`, `error`, …). */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value (quoted strings may hold commas).
 *
 * @example
 * ```ts
 * parseChallenge('Bearer realm="https://r/token",service="r",scope="repository:a:pull"');
 * // { scheme: "bearer", params: { realm: "https://r/token", service: "r", scope: "…" } }
 * ```
 */
export function parseChallenge(header: string): Challenge | undefined {
  const match = header.trim().match(/^([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pattern = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = match[2];
  let param: RegExpExecArray | null;
  while ((param = pattern.exec(rest)) !== null && param[0] !== "") {
    params[param[1].toLowerCase()] = param[2] !== undefined
      ? param[2].replace(/\\(.)/g, "$1")
      : param[3];
  }
  return { scheme: match[1].toLowerCase(), params };
}

/** `Authorization: Basic …` for credentials. */
export function basicAuthorization(credentials: Credentials): string {
  const bytes = new TextEncoder().encode(`${credentials.username}:${credentials.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** The resource scope a request needs, e.g. `repository:team/app:pull,push`. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Credentials from `--username/--password` flags, else `WHARF_REGISTRY_USERNAME/PASSWORD`. */
export function credentialsFrom(
  flags: { username?: string; password?: string },
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Credentials | undefined {
  const username = flags.username ?? env("WHARF_REGISTRY_USERNAME");
  const password = flags.password ?? env("WHARF_REGISTRY_PASSWORD");
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw new Error("registry credentials need both a username and a password");
  }
  return { username, password };
}

/** A bearer token and when it stops being usable. */
export interface Token {
  token: string;
  expiresAt: number;
}

/**
 * Asks a token endpoint for a token covering `scopes` (Basic credentials if any). Tokens live at
 * least 60 s (`expires_in` default and minimum per token.md); renewed 10 s early.
 */
export async function fetchToken(
  challenge: Challenge,
  scopes: string[],
  credentials: Credentials | undefined,
  fetchFn: typeof fetch,
): Promise<Token> {
  const realm = challenge.params.realm;
  if (!realm) throw new Error("bearer challenge without realm");
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  for (const scope of scopes) url.searchParams.append("scope", scope);
  if (credentials) url.searchParams.set("account", credentials.username);
  const headers: Record<string, string> = {};
  if (credentials) headers.authorization = basicAuthorization(credentials);
  const response = await fetchFn(url, { headers });
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw new Error(
      `token request to ${url.origin}${url.pathname} was refused (${response.status}): ${
        credentials ? "wrong username or password" : "credentials required"
      }`,
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`token request to ${url.origin}${url.pathname} failed: ${response.status}`);
  }
  const body = await response.json() as {
    token?: string;
    access_token?: string;
    expires_in?: number;
  };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error("token response has neither token nor access_token");
  const lifetime = Math.max(60, Number(body.expires_in) || 60);
  return { token, expiresAt: Date.now() + (lifetime - 10) * 1000 };
}
