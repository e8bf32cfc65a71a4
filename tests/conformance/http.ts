/**
 * The small HTTP client the conformance tests talk through — the part of `bloodorangeio/reggie`
 * the Go suite uses: requests relative to the registry, upload `Location`s reused verbatim (query
 * included), the OCI error body, and status assertions that say what the server answered.
 * @module
 */
import { AssertionError } from "node:assert";

/** A fully read response. */
export interface Reply {
  method: string;
  url: string;
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** Options of {@link Client.request}. */
export interface RequestOptions {
  headers?: Record<string, string>;
  /** Query parameters, set on top of those already in the path (reggie `SetQueryParam`). */
  query?: Record<string, string>;
  body?: Uint8Array<ArrayBuffer>;
}

/** A registry client bound to one base URL. */
export interface Client {
  /** Sends `method` to `path` (relative to the registry root, may carry a query) and reads the body. */
  request(method: string, path: string, options?: RequestOptions): Promise<Reply>;
}

/**
 * How the client authenticates: `none` (no credentials), `basic` (`Authorization: Basic` on every
 * request), or `bearer` (the Docker token flow: on a 401 with a `Bearer` challenge, fetch a token
 * from the challenge's realm with Basic credentials and the scopes asked so far, and retry).
 */
export type AuthMode = "none" | "basic" | "bearer";

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Default `none`. */
  mode?: AuthMode;
  /** Required for `basic` and `bearer`. */
  credentials?: { username: string; password: string };
}

/** Creates a {@link Client} for `baseUrl` (e.g. `http://127.0.0.1:5000`). */
export function createClient(baseUrl: string, options: ClientOptions = {}): Client {
  const mode = options.mode ?? "none";
  const credentials = options.credentials;
  if (mode !== "none" && !credentials) throw new Error(`auth mode ${mode} needs credentials`);
  const basic = credentials
    ? `Basic ${btoa(`${credentials.username}:${credentials.password}`)}`
    : "";
  const scopes = new Set<string>();
  let token = "";

  const send = async (method: string, url: URL, init: RequestOptions) => {
    const headers: Record<string, string> = {
      "User-Agent": "distribution-spec-conformance-tests",
      ...init.headers,
    };
    if (mode === "basic") headers.Authorization = basic;
    if (mode === "bearer" && token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, { method, headers, body: init.body });
    const body = new Uint8Array(await res.arrayBuffer());
    return { method, url: url.href, status: res.status, headers: res.headers, body };
  };

  /** Fetches a token for every scope seen so far (plus the challenge's); false if none. */
  const fetchToken = async (reply: Reply): Promise<boolean> => {
    const params = parseChallenge(reply.headers.get("WWW-Authenticate") ?? "");
    if (!params?.realm) return false;
    for (const scope of (params.scope ?? "").split(" ").filter(Boolean)) scopes.add(scope);
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set("service", params.service);
    for (const scope of scopes) realm.searchParams.append("scope", scope);
    const res = await fetch(realm, { headers: { Authorization: basic } });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) {
      throw new AssertionError({
        message: `token request ${realm.href} -> ${res.status} ${JSON.stringify(answer)}`,
      });
    }
    const issued = answer.token ?? answer.access_token;
    if (typeof issued !== "string" || issued === "") {
      throw new AssertionError({
        message: `token response without a token: ${JSON.stringify(answer)}`,
      });
    }
    token = issued;
    return true;
  };

  return {
    async request(method, path, options = {}) {
      const url = new URL(path, baseUrl);
      for (const [key, value] of Object.entries(options.query ?? {})) {
        url.searchParams.set(key, value);
      }
      let reply = await send(method, url, options);
      // A fresh token may still lack a scope named only by the next challenge: retry twice.
      for (let attempt = 0; mode === "bearer" && reply.status === 401 && attempt < 2; attempt++) {
        if (!await fetchToken(reply)) break;
        reply = await send(method, url, options);
      }
      return reply;
    },
  };
}

/** The parameters of a `Bearer` challenge (`realm`, `service`, `scope`, `error`), or null. */
export function parseChallenge(header: string): Record<string, string> | null {
  const match = header.match(/^\s*Bearer\s+(.*)$/i);
  if (!match) return null;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of match[1].matchAll(/([a-zA-Z_]+)=(?:"([^"]*)"|([^,\s]*))/g)) {
    params[key.toLowerCase()] = quoted ?? bare;
  }
  return params;
}

/** The body as text. */
export function text(reply: Reply): string {
  return new TextDecoder().decode(reply.body);
}

/** The body parsed as JSON; fails the test with the raw body if it is not JSON. */
export function json<T>(reply: Reply): T {
  try {
    return JSON.parse(text(reply)) as T;
  } catch {
    throw new AssertionError({ message: `expected a JSON body from ${describe(reply)}` });
  }
}

/**
 * reggie `GetRelativeLocation`: the `Location` header reduced to path and query (an absolute URL
 * loses its scheme and host). Empty string when there is no `Location`.
 */
export function relativeLocation(reply: Reply): string {
  const location = reply.headers.get("Location");
  if (!location) return "";
  const url = new URL(location, reply.url);
  return url.pathname + url.search;
}

/** reggie `GetAbsoluteLocation`: the `Location` header resolved against the request URL. */
export function absoluteLocation(reply: Reply): string {
  const location = reply.headers.get("Location");
  return location ? new URL(location, reply.url).href : "";
}

/** One entry of the OCI error body. */
export interface ErrorInfo {
  code: string;
  message?: string;
  detail?: unknown;
}

/** reggie `Errors()`: the `errors` array of an OCI error body. */
export function errors(reply: Reply): ErrorInfo[] {
  const parsed = json<{ errors?: ErrorInfo[] }>(reply);
  if (!Array.isArray(parsed.errors)) {
    throw new AssertionError({ message: `expected an OCI error body from ${describe(reply)}` });
  }
  return parsed.errors;
}

/** `METHOD url -> status` plus the start of the body, for failure messages. */
export function describe(reply: Reply): string {
  const body = text(reply).slice(0, 400);
  return `${reply.method} ${reply.url} -> ${reply.status}${body ? ` ${body}` : ""}`;
}

/** A status predicate: an exact code, or an inclusive range `[low, high]`. */
export type StatusMatcher = number | readonly [number, number];

/** Any 2xx. */
export const SUCCESS: StatusMatcher = [200, 299];

/** Fails unless the status matches one of `allowed` (gomega `SatisfyAny`). */
export function expectStatus(reply: Reply, ...allowed: StatusMatcher[]): void {
  const ok = allowed.some((m) =>
    typeof m === "number" ? reply.status === m : reply.status >= m[0] && reply.status <= m[1]
  );
  if (!ok) {
    const wanted = allowed.map((m) => typeof m === "number" ? m : `${m[0]}..${m[1]}`).join(" or ");
    throw new AssertionError({ message: `expected status ${wanted}, got ${describe(reply)}` });
  }
}

/** Fails unless header `name` equals `expected`. */
export function expectHeader(reply: Reply, name: string, expected: string): void {
  const actual = reply.headers.get(name);
  if (actual !== expected) {
    throw new AssertionError({
      message: `expected header ${name}: ${JSON.stringify(expected)}, got ${
        JSON.stringify(actual)
      } (${describe(reply)})`,
    });
  }
}

/** Fails if header `name` is missing or empty (gomega `ToNot(BeEmpty())`). */
export function expectHeaderPresent(reply: Reply, name: string): void {
  if (!reply.headers.get(name)) {
    throw new AssertionError({
      message: `expected a non-empty ${name} header (${describe(reply)})`,
    });
  }
}
