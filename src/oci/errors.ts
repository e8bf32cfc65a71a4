/**
 * The registry's one error type: an OCI error code, its HTTP status and a message.
 * Raised anywhere below HTTP and turned into the OCI error JSON in exactly one place
 * (`src/http/errors.ts`).
 * @module
 */

/** Error codes of the OCI distribution spec, plus the legacy ones distribution still sends. */
export type ErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "CONFLICT"
  | "TOOMANYREQUESTS"
  | "RANGE_INVALID"
  | "PAGINATION_NUMBER_INVALID"
  | "UNAVAILABLE"
  | "UNKNOWN";

/** The HTTP status each code is answered with unless a raise site says otherwise. */
export const DEFAULT_STATUS: Record<ErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  CONFLICT: 409,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
};

/** Options of a {@link RegistryError}. */
export interface RegistryErrorOptions {
  /** HTTP status, when it differs from the code's default (e.g. 413 for an oversized manifest). */
  status?: number;
  /** JSON-serialisable detail sent to the client. */
  detail?: unknown;
  /** Extra response headers (e.g. `Range` on a 416). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs and never sent to the client. */
  cause?: unknown;
}

/**
 * A failure with an OCI error code. Its message is shown to the client, so it must not
 * contain secrets or internal paths.
 *
 * @example
 * ```ts
 * throw new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { detail: { digest } });
 * ```
 */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "RegistryError";
    this.code = code;
    this.status = options.status ?? DEFAULT_STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}
