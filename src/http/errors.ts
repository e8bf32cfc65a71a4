/**
 * The one place where failures become HTTP responses: a {@link RegistryError} becomes the OCI
 * error JSON with its status; anything else is logged and answered as `UNKNOWN` without
 * internals.
 * @module
 */
import { RegistryError } from "../oci/errors.ts";
import type { Logger } from "../log/logger.ts";

/** The OCI error body for one error. */
export function errorBody(err: RegistryError): string {
  const entry: Record<string, unknown> = { code: err.code, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  return JSON.stringify({ errors: [entry] });
}

/** Maps any thrown value to a response; unexpected errors are logged with the request id. */
export function errorResponse(err: unknown, log: Logger, requestId?: string): Response {
  let registryError: RegistryError;
  if (err instanceof RegistryError) {
    registryError = err;
    // A store that could not be reached (the message names it: "metadata database …",
    // "object storage …"): one line per failed request, with the underlying cause.
    if (err.code === "UNAVAILABLE" && err.cause !== undefined) {
      log.warn(err.message, { requestId, cause: String(err.cause) });
    }
  } else if (isDiskFull(err)) {
    log.error("storage full", { requestId, error: String(err) });
    registryError = new RegistryError("UNAVAILABLE", "storage is full", { status: 507 });
  } else {
    log.error("unexpected error", { requestId, error: String(err), stack: (err as Error)?.stack });
    registryError = new RegistryError("UNKNOWN", "internal server error");
  }
  return new Response(errorBody(registryError), {
    status: registryError.status,
    headers: { "Content-Type": "application/json", ...registryError.headers },
  });
}

function isDiskFull(err: unknown): boolean {
  return err instanceof Error && /ENOSPC|No space left/i.test(`${err.message} ${err.name}`);
}
