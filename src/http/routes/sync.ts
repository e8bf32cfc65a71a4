/**
 * `GET /wharf/v1/sync[?mirror=NAME&limit=N]`: the configured mirrors (schedule, next run,
 * running) and their run history, newest first. Like the catalog it is not about one
 * repository: any authenticated caller may read it when logins are configured; without
 * logins (open mode) only loopback callers may.
 * @module
 */
import type { Context, Hono } from "hono";
import { isLoopback } from "../../auth/authenticator.ts";
import { RegistryError } from "../../oci/errors.ts";
import { TOKEN_PATH } from "../auth.ts";
import type { AppDeps, AppEnv } from "../context.ts";

/** Registers the sync status route; answers 404 when the process runs no sync service. */
export function syncRoutes(app: Hono<AppEnv>, deps: AppDeps): void {
  app.get("/wharf/v1/sync", async (c) => {
    allowed(c, deps);
    if (!deps.sync) {
      throw new RegistryError("UNSUPPORTED", "mirroring is not running in this process", {
        status: 404,
      });
    }
    const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 50) || 50, 1), 1000);
    const mirror = c.req.query("mirror") || undefined;
    const [mirrors, runs] = await Promise.all([
      deps.sync.mirrors(),
      deps.sync.runs({ mirror, limit }),
    ]);
    return c.json({ mirrors: mirrors.filter((m) => !mirror || m.name === mirror), runs });
  });
}

function allowed(c: Context<AppEnv>, deps: AppDeps): void {
  const auth = deps.auth;
  if (!auth) return;
  if (auth.authenticator.mode === "open") {
    const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
    if (isLoopback(info?.remoteAddr?.hostname ?? "")) return;
    throw new RegistryError("DENIED", "sync status is served to loopback callers only");
  }
  if (c.get("auth").user !== null) return;
  const challenge = auth.authenticator.mode === "basic"
    ? `Basic realm="wharf"`
    : `Bearer realm="${
      auth.challenge.realm ?? new URL(TOKEN_PATH, c.req.url).href
    }",service="${auth.challenge.service}"`;
  throw new RegistryError("UNAUTHORIZED", "authentication required", {
    headers: { "WWW-Authenticate": challenge },
  });
}
