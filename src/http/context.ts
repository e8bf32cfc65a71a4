/**
 * Types and small request helpers shared by the HTTP routes.
 * @module
 */
import type { Context } from "hono";
import { type Access, type Action, ALLOW_ALL } from "../registry/access.ts";
import type { Registry } from "../registry/registry.ts";
import type { Logger } from "../log/logger.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import type { ChallengeOptions } from "./auth.ts";
import type { PluginHost } from "../plugins/host.ts";
import type { SyncApi } from "../sync/service.ts";
import { assertName } from "../oci/names.ts";
import { RegistryError } from "../oci/errors.ts";

/** Hono environment of Wharf's app: per-request variables. */
export interface AppEnv {
  Variables: {
    auth: RequestAuth;
    requestId: string;
  };
}

/** What the authentication middleware decided about a request. */
export interface RequestAuth {
  /** What the request may do (a token's grants, or the rules for the caller). */
  access: Access;
  /** The user behind the credentials or token, or null. */
  user: string | null;
  /**
   * Which repositories the catalog shows to this caller; throws when the request may not list
   * the catalog at all (a token without `registry:catalog:*`).
   */
  catalog(): Access;
  /** The error for a refused action: 401 with a challenge, or 403 `DENIED`. */
  deny(repository: string, action: Action): RegistryError;
}

/** Request auth of a registry without authentication: everything allowed. */
export const OPEN_AUTH: RequestAuth = {
  access: ALLOW_ALL,
  user: null,
  catalog: () => ALLOW_ALL,
  deny: (repository, action) =>
    new RegistryError("DENIED", `${action} is not allowed on ${repository}`),
};

/** What routes need from the process. */
export interface AppDeps {
  registry: Registry;
  log: Logger;
  /** Loaded plugins: their routes and the artifact index. */
  plugins?: PluginHost;
  /** Authentication; without it every request may do everything (in-process tests). */
  auth?: { authenticator: Authenticator; challenge: ChallengeOptions };
  /** Mirror status, run history and runs started on request, for `/wharf/v1/sync`. */
  sync?: SyncApi;
}

/**
 * The validated repository name of a `/v2/<name>/…` route, after checking that the request
 * may perform `action` on it. Every repository route gets its name through here.
 */
export function repository(c: Context<AppEnv>, action: Action): string {
  const name = assertName(c.req.param("name") ?? "");
  const auth = c.get("auth");
  if (!auth.access.can(name, action)) throw auth.deny(name, action);
  return name;
}

/** A query parameter that must be present and single. */
export function requiredQuery(c: Context<AppEnv>, key: string, code: "DIGEST_INVALID"): string {
  const value = c.req.query(key);
  if (value === undefined || value === "") {
    throw new RegistryError(code, `query parameter "${key}" is required`);
  }
  return value;
}

/** The request body as a stream (empty when there is none). */
export function bodyStream(c: Context<AppEnv>): ReadableStream<Uint8Array> {
  return c.req.raw.body ?? new Blob([]).stream();
}

/** The declared `Content-Length`, or undefined when absent (chunked transfer). */
export function contentLength(c: Context<AppEnv>): number | undefined {
  const header = c.req.header("content-length");
  if (header === undefined) return undefined;
  if (!/^\d+$/.test(header)) throw new RegistryError("SIZE_INVALID", "invalid Content-Length");
  return Number(header);
}

/** True when the request carries no body at all. */
export function hasNoBody(c: Context<AppEnv>): boolean {
  const length = c.req.header("content-length");
  if (length !== undefined) return length === "0";
  return c.req.header("transfer-encoding") === undefined;
}
