/**
 * Types and small request helpers shared by the HTTP routes.
 * @module
 */
import type { Context } from "hono";
import type { Access } from "../registry/access.ts";
import type { Registry } from "../registry/registry.ts";
import type { Logger } from "../log/logger.ts";
import { assertName } from "../oci/names.ts";
import { RegistryError } from "../oci/errors.ts";

/** Hono environment of Wharf's app: per-request variables. */
export interface AppEnv {
  Variables: {
    /** What the caller may do (everything while authentication is off). */
    access: Access;
    requestId: string;
  };
}

/** What routes need from the process. */
export interface AppDeps {
  registry: Registry;
  log: Logger;
}

/** The validated repository name of a `/v2/<name>/…` route. */
export function repositoryName(c: Context<AppEnv>): string {
  return assertName(c.req.param("name") ?? "");
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
