/**
 * The upstream side of a mirror: a {@link RegistryClient} built from the mirror's config
 * (credentials inline, from the environment or a file; extra CA roots; retries, jitter and
 * timeouts), and a generic retry helper for whole operations such as a blob copy, whose
 * failures (a truncated body, a wrong digest) only show after the answer started.
 * @module
 */
import { RegistryClient, type RetryEvent } from "../client/registry_client.ts";
import type { Credentials } from "../client/auth.ts";
import type { MirrorConfig } from "./schema.ts";

/** Resolves a mirror's credentials; throws a readable error when they are incomplete. */
export async function mirrorCredentials(
  mirror: MirrorConfig,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<Credentials | undefined> {
  const c = mirror.credentials;
  if (!c) return undefined;
  if (c.file) {
    let text: string;
    try {
      text = (await Deno.readTextFile(c.file)).trim();
    } catch (err) {
      throw new Error(`mirror ${mirror.name}: cannot read ${c.file}: ${(err as Error).message}`);
    }
    const colon = text.indexOf(":");
    if (colon <= 0) throw new Error(`mirror ${mirror.name}: ${c.file} must hold user:password`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1).split("\n")[0] };
  }
  const username = c.username ?? (c.usernameEnv ? env(c.usernameEnv) : undefined);
  const password = c.password ?? (c.passwordEnv ? env(c.passwordEnv) : undefined);
  if (username === undefined || password === undefined) {
    const missing = [
      username === undefined ? c.usernameEnv ?? "username" : undefined,
      password === undefined ? c.passwordEnv ?? "password" : undefined,
    ].filter(Boolean).join(", ");
    throw new Error(`mirror ${mirror.name}: incomplete credentials (missing ${missing})`);
  }
  return { username, password };
}

/** Builds the client for a mirror's upstream. Call `close()` on it after the run. */
export async function upstreamClient(
  mirror: MirrorConfig,
  onRetry?: (retry: RetryEvent) => void,
): Promise<RegistryClient> {
  const url = new URL(mirror.upstream);
  const caCerts = mirror.tls.caFile ? [await readCa(mirror)] : undefined;
  return new RegistryClient({
    registry: url.host,
    insecure: url.protocol === "http:",
    credentials: await mirrorCredentials(mirror),
    retries: mirror.retries.attempts,
    retryDelayMs: mirror.retries.delay,
    maxRetryDelayMs: mirror.retries.maxDelay,
    timeoutMs: mirror.timeout,
    caCerts,
    onRetry,
    userAgent: "wharf-sync",
  });
}

async function readCa(mirror: MirrorConfig): Promise<string> {
  try {
    return await Deno.readTextFile(mirror.tls.caFile!);
  } catch (err) {
    throw new Error(
      `mirror ${mirror.name}: cannot read tls.caFile ${mirror.tls.caFile}: ${
        (err as Error).message
      }`,
    );
  }
}

/** Retry settings of whole operations. */
export interface RetryPolicy {
  attempts: number;
  delay: number;
  maxDelay: number;
  /** Told before each retry. */
  onRetry?: (what: string, error: unknown, attempt: number) => void;
  /** False for errors not worth retrying (e.g. 404, 401). */
  retryable?: (error: unknown) => boolean;
}

/** Runs `operation`, retrying failures with exponential backoff and ±20 % jitter. */
export async function withRetries<T>(
  what: string,
  policy: RetryPolicy,
  operation: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await operation();
    } catch (err) {
      if (attempt > policy.attempts || policy.retryable?.(err) === false) throw err;
      policy.onRetry?.(what, err, attempt);
      const base = Math.min(policy.delay * 2 ** (attempt - 1), policy.maxDelay);
      await new Promise((r) => setTimeout(r, Math.round(base * (0.8 + 0.4 * Math.random()))));
    }
  }
}
