/**
 * A small OCI distribution client for the Wharf CLI and, later, the mirroring engine: manifests
 * (exact bytes), blobs (streamed uploads and verified downloads), referrers with the
 * `sha256-<hex>` tag fallback, tags; Basic and Docker token auth; retries on 429/5xx with
 * backoff and `Retry-After`. Everything fetched is checked against its digest.
 * @module
 */
import { readAtMost } from "../io/read.ts";
import { createHash } from "node:crypto";
import { type Algorithm, digestOf, looksLikeDigest, parseDigest } from "../oci/digest.ts";
import {
  baseMediaType,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../oci/media_types.ts";
import {
  basicAuthorization,
  type Challenge,
  type Credentials,
  fetchToken,
  parseChallenge,
  repositoryScope,
  type Token,
} from "./auth.ts";
import { DOCKER_HUB, DOCKER_HUB_API } from "./reference.ts";

/** Accept list for manifest requests: every manifest type Wharf stores. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/** Largest manifest fetched (as containers/image and distribution limit them). */
export const MAX_MANIFEST_BYTES = 4 << 20;

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** `host[:port]` as named in references (`docker.io` is served by `registry-1.docker.io`). */
  registry: string;
  /** Basic credentials, for Basic auth or for the token endpoint. */
  credentials?: Credentials;
  /** Plain HTTP; loopback hosts use HTTP anyway. */
  insecure?: boolean;
  /** Extra attempts after a 429/5xx or network error (default 3). */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt (default 200). */
  retryDelayMs?: number;
  /** Longest wait honoured from `Retry-After`, in ms (default 30 000). */
  maxRetryDelayMs?: number;
  /** Random share (0–1) taken off or added to each backoff delay (default 0.2). */
  jitter?: number;
  /**
   * Per request: longest wait for the response headers, and longest silence while a body is
   * read, in ms (default: none).
   */
  timeoutMs?: number;
  /** Extra root certificates (PEM) for TLS to this registry. */
  caCerts?: string[];
  /** Told about every retry (for run statistics and logs). */
  onRetry?: (retry: RetryEvent) => void;
  /** `User-Agent` header. */
  userAgent?: string;
  /** `fetch` to use (tests). */
  fetch?: typeof fetch;
}

/** One retry of a request. */
export interface RetryEvent {
  method: string;
  url: string;
  /** The status that caused it (429, 5xx), or undefined after a network error or timeout. */
  status?: number;
  error?: string;
  attempt: number;
  delayMs: number;
}

/** A non-success answer from the registry, with its OCI error code when it sent one. */
export class RegistryClientError extends Error {
  override name = "RegistryClientError";
  constructor(message: string, readonly status: number, readonly code?: string) {
    super(message);
  }
}

/** What a manifest HEAD answers. */
export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** A fetched manifest: exact bytes, verified digest, media type. */
export interface FetchedManifest extends ManifestInfo {
  bytes: Uint8Array;
}

/** A descriptor as listed in an index (referrers answers). */
export interface IndexDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface RequestOptions {
  repository?: string;
  actions?: readonly string[];
  headers?: Record<string, string>;
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Statuses returned to the caller instead of thrown. */
  accept?: number[];
  /** Extra token scopes (e.g. `registry:catalog:*`). */
  scopes?: string[];
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/;

/**
 * An OCI registry client for one registry host.
 *
 * @example
 * ```ts
 * const client = new RegistryClient({ registry: "127.0.0.1:5000" });
 * const manifest = await client.getManifest("team/app", "v1");
 * ```
 */
export class RegistryClient {
  /** `http(s)://host[:port]` of the API. */
  readonly baseUrl: string;
  readonly #options: RegistryClientOptions;
  readonly #fetch: typeof fetch;
  readonly #httpClient: Deno.HttpClient | undefined;
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, Token>();

  constructor(options: RegistryClientOptions) {
    this.#options = options;
    const base = options.fetch ?? fetch;
    const client = options.caCerts?.length
      ? Deno.createHttpClient({ caCerts: options.caCerts })
      : undefined;
    this.#httpClient = client;
    this.#fetch = client
      ? (input, init) => base(input, { ...init, client } as unknown as RequestInit)
      : base;
    const host = options.registry === DOCKER_HUB ? DOCKER_HUB_API : options.registry;
    const scheme = options.insecure || LOOPBACK.test(host) ? "http" : "https";
    this.baseUrl = `${scheme}://${host}`;
  }

  /**
   * `GET /v2/`: resolves with the answer's headers (e.g. `X-Registry-Supports-Signatures`) when
   * the registry answers as a distribution API (200, or 401 + auth).
   */
  async ping(): Promise<Headers> {
    const response = await this.#request("GET", "/v2/", {});
    await response.body?.cancel();
    return response.headers;
  }

  /** Releases the TLS client made for `caCerts`, if any. */
  close(): void {
    this.#httpClient?.close();
  }

  /** Every repository of `GET /v2/_catalog`, following `Link` pagination. */
  async listCatalog(): Promise<string[]> {
    const names: string[] = [];
    let path: string | undefined = "/v2/_catalog?n=1000";
    while (path) {
      const response = await this.#request("GET", path, { scopes: ["registry:catalog:*"] });
      const body = await response.json() as { repositories?: string[] | null };
      names.push(...(body.repositories ?? []));
      path = nextPath(response, this.baseUrl);
    }
    return names;
  }

  /** `HEAD` a manifest; `undefined` when the registry says it does not exist. */
  async headManifest(
    repository: string,
    reference: string,
    accept: string[] = MANIFEST_ACCEPT,
  ): Promise<ManifestInfo | undefined> {
    const response = await this.#request("HEAD", `/v2/${repository}/manifests/${reference}`, {
      repository,
      actions: ["pull"],
      headers: { accept: accept.join(", ") },
      accept: [404],
    });
    await response.body?.cancel();
    if (response.status === 404) return undefined;
    const digest = response.headers.get("docker-content-digest");
    if (!digest || !looksLikeDigest(digest)) {
      // No digest header: only a GET can tell.
      const manifest = await this.getManifest(repository, reference, accept);
      return manifest &&
        { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
    }
    if (looksLikeDigest(reference) && digest !== reference) {
      throw new RegistryClientError(`registry answered ${digest} for ${reference}`, 502);
    }
    return {
      digest,
      mediaType: baseMediaType(response.headers.get("content-type")),
      size: Number(response.headers.get("content-length") ?? 0),
    };
  }

  /**
   * `GET` a manifest's exact bytes; `undefined` on 404. The digest is verified against the
   * requested digest, or against `Docker-Content-Digest` when fetched by tag.
   */
  async getManifest(
    repository: string,
    reference: string,
    accept: string[] = MANIFEST_ACCEPT,
  ): Promise<FetchedManifest | undefined> {
    const response = await this.#request("GET", `/v2/${repository}/manifests/${reference}`, {
      repository,
      actions: ["pull"],
      headers: { accept: accept.join(", ") },
      accept: [404],
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    const bytes = await readLimited(response, MAX_MANIFEST_BYTES, `manifest ${reference}`);
    const header = response.headers.get("docker-content-digest");
    const expected = looksLikeDigest(reference)
      ? reference
      : header && looksLikeDigest(header)
      ? header
      : undefined;
    const algorithm = expected ? parseDigest(expected).algorithm : "sha256";
    const digest = digestOf(bytes, algorithm);
    if (expected && digest !== expected) {
      throw new RegistryClientError(
        `manifest ${repository}:${reference} has digest ${digest}, expected ${expected}`,
        502,
      );
    }
    let mediaType = baseMediaType(response.headers.get("content-type"));
    if (!mediaType || mediaType === "application/json") {
      try {
        mediaType = JSON.parse(new TextDecoder().decode(bytes)).mediaType ?? mediaType;
      } catch {
        // leave the header's type
      }
    }
    return { bytes, digest, mediaType, size: bytes.length };
  }

  /**
   * `PUT` manifest bytes under a tag or digest. Returns the digest and the `OCI-Subject` header
   * (set by registries that index the manifest's `subject` as a referrer).
   */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: string; subject?: string }> {
    const response = await this.#request("PUT", `/v2/${repository}/manifests/${reference}`, {
      repository,
      actions: ["pull", "push"],
      headers: { "content-type": mediaType },
      body: bytes,
    });
    await response.body?.cancel();
    const digest = digestOf(bytes);
    const subject = response.headers.get("oci-subject") ?? undefined;
    return { digest, ...(subject ? { subject } : {}) };
  }

  /** True when the blob exists in the repository (`HEAD`). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const response = await this.#request("HEAD", `/v2/${repository}/blobs/${digest}`, {
      repository,
      actions: ["pull"],
      accept: [404],
    });
    await response.body?.cancel();
    return response.status !== 404;
  }

  /** A blob's size from a `HEAD`, or undefined when the registry does not have it. */
  async blobSize(repository: string, digest: string): Promise<number | undefined> {
    const response = await this.#request("HEAD", `/v2/${repository}/blobs/${digest}`, {
      repository,
      actions: ["pull"],
      accept: [404],
    });
    await response.body?.cancel();
    const length = response.headers.get("content-length");
    return response.status === 404 || length === null ? undefined : Number(length);
  }

  /** A blob's bytes (at most `maxBytes`), verified against its digest. */
  async getBlob(repository: string, digest: string, maxBytes = 64 << 20): Promise<Uint8Array> {
    const response = await this.#request("GET", `/v2/${repository}/blobs/${digest}`, {
      repository,
      actions: ["pull"],
    });
    const bytes = await readLimited(response, maxBytes, `blob ${digest}`);
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest) {
      throw new RegistryClientError(`blob ${digest} arrived with digest ${actual}`, 502);
    }
    return bytes;
  }

  /** A blob as a stream that errors at its end unless the bytes match `digest`. */
  async openBlob(repository: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#request("GET", `/v2/${repository}/blobs/${digest}`, {
      repository,
      actions: ["pull"],
    });
    if (!response.body) throw new RegistryClientError(`blob ${digest}: empty response`, 502);
    return response.body.pipeThrough(verifyingStream(digest));
  }

  /**
   * Uploads a blob: `POST` (optionally mounting from another repository) then one `PUT` with the
   * whole body, which may be a stream. Skips nothing: call {@link hasBlob} first to avoid a
   * re-upload.
   */
  async uploadBlob(
    repository: string,
    digest: string,
    body: Uint8Array | ReadableStream<Uint8Array>,
    options: { mountFrom?: string } = {},
  ): Promise<void> {
    const query = options.mountFrom
      ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(options.mountFrom)}`
      : "";
    const start = await this.#request("POST", `/v2/${repository}/blobs/uploads/${query}`, {
      repository,
      actions: ["pull", "push"],
    });
    await start.body?.cancel();
    if (start.status === 201) {
      if (body instanceof ReadableStream) await body.cancel();
      return; // mounted
    }
    const location = start.headers.get("location");
    if (!location) throw new RegistryClientError("upload: no Location in the POST answer", 502);
    const url = new URL(location, this.baseUrl);
    url.searchParams.set("digest", digest);
    const put = await this.#request("PUT", url.pathname + url.search, {
      repository,
      actions: ["pull", "push"],
      headers: { "content-type": "application/octet-stream" },
      body,
    });
    await put.body?.cancel();
  }

  /** Uploads `bytes` unless the repository already has them. */
  async pushBlob(
    repository: string,
    bytes: Uint8Array,
    digest: string = digestOf(bytes),
  ): Promise<void> {
    if (await this.hasBlob(repository, digest)) return;
    await this.uploadBlob(repository, digest, bytes);
  }

  /**
   * The referrers of a manifest, from the referrers API or, where the registry has none
   * (404), from the `sha256-<hex>` fallback tag index. Filtered by `artifactType` client-side
   * when the registry did not filter.
   */
  async referrers(
    repository: string,
    digest: string,
    artifactType?: string,
  ): Promise<IndexDescriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : "";
    const response = await this.#request("GET", `/v2/${repository}/referrers/${digest}${query}`, {
      repository,
      actions: ["pull"],
      headers: { accept: OCI_INDEX },
      accept: [404, 405],
    });
    let manifests: IndexDescriptor[];
    let filtered = false;
    if (response.status === 200) {
      const bytes = await readLimited(response, MAX_MANIFEST_BYTES, "referrers");
      manifests = parseIndex(bytes);
      filtered = (response.headers.get("oci-filters-applied") ?? "").includes("artifactType");
    } else {
      await response.body?.cancel();
      const fallback = await this.getManifest(repository, digest.replace(":", "-"), [OCI_INDEX]);
      manifests = fallback ? parseIndex(fallback.bytes) : [];
    }
    return artifactType && !filtered
      ? manifests.filter((m) => m.artifactType === artifactType)
      : manifests;
  }

  /**
   * `GET` of a registry extension path about `repository` (e.g. Wharf's
   * `/wharf/v1/<name>/artifacts/<digest>`), authorised with pull scope; the JSON body.
   */
  async getJson(repository: string, path: string): Promise<unknown> {
    const response = await this.#request("GET", path, { repository, actions: ["pull"] });
    return await response.json();
  }

  /** Every tag of a repository, following `Link` pagination. */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repository}/tags/list`;
    while (path) {
      const response = await this.#request("GET", path, { repository, actions: ["pull"] });
      const body = await response.json() as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      path = nextPath(response, this.baseUrl);
    }
    return tags;
  }

  /** Sends a request with auth and retries; throws {@link RegistryClientError} on failure. */
  async #request(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(path, this.baseUrl);
    const replayable = !(options.body instanceof ReadableStream);
    let response = await this.#send(method, url, options, replayable);
    if (response.status === 401) {
      const header = response.headers.get("www-authenticate") ?? "";
      await response.body?.cancel();
      const challenge = parseChallenge(header);
      if (!challenge || !replayable || !(await this.#authorize(challenge, options))) {
        throw this.#unauthorized(method, url);
      }
      response = await this.#send(method, url, options, replayable);
      if (response.status === 401) {
        await response.body?.cancel();
        throw this.#unauthorized(method, url);
      }
    }
    if (response.ok || options.accept?.includes(response.status)) return response;
    throw await errorFrom(method, url, response);
  }

  #unauthorized(method: string, url: URL): RegistryClientError {
    const hint = this.#options.credentials
      ? "credentials rejected or lacking access"
      : "pass --username/--password or set WHARF_REGISTRY_USERNAME/PASSWORD";
    return new RegistryClientError(
      `${method} ${url.pathname}: unauthorized (${hint})`,
      401,
      "UNAUTHORIZED",
    );
  }

  /** Learns from a challenge; false when there is nothing new to try. */
  async #authorize(challenge: Challenge, options: RequestOptions): Promise<boolean> {
    const known = this.#challenge;
    this.#challenge = challenge;
    if (challenge.scheme === "basic") {
      return this.#options.credentials !== undefined && known?.scheme !== "basic";
    }
    if (challenge.scheme !== "bearer") return false;
    const scopes = this.#scopes(options, challenge.params.scope);
    const token = await fetchToken(challenge, scopes, this.#options.credentials, this.#fetch);
    this.#tokens.set(this.#scopes(options).join(" "), token);
    return true;
  }

  #scopes(options: RequestOptions, extra?: string): string[] {
    const scopes = new Set<string>();
    if (options.repository && options.actions) {
      scopes.add(repositoryScope(options.repository, options.actions));
    }
    for (const scope of options.scopes ?? []) scopes.add(scope);
    for (const scope of (extra ?? "").split(" ").filter(Boolean)) scopes.add(scope);
    return [...scopes];
  }

  async #authorization(options: RequestOptions): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      return this.#options.credentials && basicAuthorization(this.#options.credentials);
    }
    const key = this.#scopes(options).join(" ");
    let token = this.#tokens.get(key);
    if (!token || token.expiresAt <= Date.now()) {
      if (!options.repository && !options.scopes) return undefined;
      token = await fetchToken(
        challenge,
        this.#scopes(options),
        this.#options.credentials,
        this.#fetch,
      );
      this.#tokens.set(key, token);
    }
    return `Bearer ${token.token}`;
  }

  async #send(
    method: string,
    url: URL,
    options: RequestOptions,
    replayable: boolean,
  ): Promise<Response> {
    const attempts = 1 + (replayable ? this.#options.retries ?? 3 : 0);
    const base = this.#options.retryDelayMs ?? 200;
    const maxDelay = this.#options.maxRetryDelayMs ?? 30_000;
    const backoff = (attempt: number) =>
      Math.min(jittered(base * 2 ** (attempt - 1), this.#options.jitter ?? 0.2), maxDelay);
    for (let attempt = 1;; attempt++) {
      const headers: Record<string, string> = {
        "user-agent": this.#options.userAgent ?? "wharf",
        ...options.headers,
      };
      const authorization = await this.#authorization(options);
      if (authorization) headers.authorization = authorization;
      let response: Response;
      try {
        // A Uint8Array over any ArrayBufferLike is a valid body at run time.
        const body = options.body as BodyInit | undefined;
        response = await timed(
          (signal) => this.#fetch(url, { method, headers, body, signal }),
          this.#options.timeoutMs,
        );
      } catch (err) {
        const message = err instanceof DOMException && err.name === "TimeoutError"
          ? `no answer within ${this.#options.timeoutMs} ms`
          : (err as Error).message;
        if (attempt >= attempts) {
          throw new RegistryClientError(`${method} ${url.href}: ${message}`, 0);
        }
        const delayMs = backoff(attempt);
        this.#options.onRetry?.({ method, url: url.href, error: message, attempt, delayMs });
        await sleep(delayMs);
        continue;
      }
      if ((response.status === 429 || response.status >= 500) && attempt < attempts) {
        const wait = retryAfter(response.headers.get("retry-after"));
        const delayMs = wait === undefined ? backoff(attempt) : Math.min(wait, maxDelay);
        await response.body?.cancel();
        this.#options.onRetry?.({
          method,
          url: url.href,
          status: response.status,
          attempt,
          delayMs,
        });
        await sleep(delayMs);
        continue;
      }
      return response;
    }
  }
}

/** Milliseconds to wait from a `Retry-After` value (seconds or an HTTP date). */
export function retryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `base` ± a random `share` of it. */
function jittered(base: number, share: number): number {
  return Math.max(0, Math.round(base * (1 + share * (2 * Math.random() - 1))));
}

/**
 * Runs a fetch under a timeout: the answer's headers must arrive within `ms`, then each read of
 * the body must bring data within `ms` (a slow but moving download is fine, and so is a consumer
 * that takes its time between reads: only the upstream's silence counts).
 *
 * A stalled body is ended by cancelling its reader, not by aborting the fetch's signal: Deno
 * passes that abort on to the body through a dependent signal of the fetch's own `Request`,
 * held weakly, so once the fetch's objects are garbage-collected mid-download the abort is lost
 * and the read waits for as long as the upstream stays silent.
 */
async function timed(
  send: (signal: AbortSignal) => Promise<Response>,
  ms: number | undefined,
): Promise<Response> {
  if (!ms) return await send(new AbortController().signal);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(timeoutError()), ms);
  let response: Response;
  try {
    response = await send(controller.signal);
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    clearTimeout(timer);
  }
  if (!response.body) return response;
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(stream) {
      let stalled = false;
      const silence = setTimeout(() => {
        stalled = true;
        // Ends the pending read (as done) and closes the connection.
        reader.cancel(timeoutError()).catch(() => {});
      }, ms);
      try {
        const { done, value } = await reader.read();
        if (stalled) throw timeoutError();
        if (done) stream.close();
        else stream.enqueue(value);
      } catch (err) {
        stream.error(
          stalled ? new RegistryClientError(`body stalled for more than ${ms} ms`, 504) : err,
        );
      } finally {
        clearTimeout(silence);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

function timeoutError(): DOMException {
  return new DOMException("timed out", "TimeoutError");
}

/** The path of a `Link: <…>; rel="next"` header, if any. */
function nextPath(response: Response, baseUrl: string): string | undefined {
  const link = response.headers.get("link")?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  const next = link ? new URL(link[1], baseUrl) : undefined;
  return next ? next.pathname + next.search : undefined;
}

function parseIndex(bytes: Uint8Array): IndexDescriptor[] {
  const index = JSON.parse(new TextDecoder().decode(bytes));
  return Array.isArray(index?.manifests) ? index.manifests : [];
}

function readLimited(response: Response, max: number, what: string): Promise<Uint8Array> {
  const length = response.headers.get("content-length");
  return readAtMost(
    response.body,
    max,
    () => new RegistryClientError(`${what} is more than ${max} bytes`, 502),
    length === null ? undefined : Number(length),
  );
}

function verifyingStream(digest: string): TransformStream<Uint8Array, Uint8Array> {
  const { algorithm, hex } = parseDigest(digest);
  const hash = createHash(algorithm as Algorithm);
  return new TransformStream({
    transform(chunk, controller) {
      hash.update(chunk);
      controller.enqueue(chunk);
    },
    flush(controller) {
      const actual = hash.digest("hex");
      if (actual !== hex) {
        controller.error(
          new RegistryClientError(`blob ${digest} arrived with digest ${algorithm}:${actual}`, 502),
        );
      }
    },
  });
}

async function errorFrom(method: string, url: URL, response: Response): Promise<Error> {
  const text = await response.text().catch(() => "");
  let code: string | undefined;
  let message = "";
  try {
    const first = JSON.parse(text)?.errors?.[0];
    code = first?.code;
    message = first?.message ?? "";
  } catch {
    message = text.slice(0, 200);
  }
  const detail = [code, message].filter(Boolean).join(": ");
  return new RegistryClientError(
    `${method} ${url.pathname}: ${response.status}${detail ? ` ${detail}` : ""}`,
    response.status,
    code,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
