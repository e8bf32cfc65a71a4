/**
 * The mirrors and their runs:
 * - `GET /wharf/v1/sync[?mirror=NAME&limit=N]`: the configured mirrors (schedule, next run,
 *   running) and their run history, newest first;
 * - `GET /wharf/v1/sync/runs/<id>`: one run as the history holds it (live or finished);
 * - `POST /wharf/v1/sync/mirrors/<name>/runs`: starts a run of that mirror in this process, the
 *   same run a schedule starts; `202 Accepted` with the run and its `Location`, `409` while the
 *   mirror runs in any process sharing the history.
 *
 * Reading is like the catalog, not about one repository: any authenticated caller may read when
 * logins are configured; without logins (open mode) only loopback callers may. Starting a run
 * writes into the mirror's repositories, so the caller must also be allowed to push to every
 * repository the mirror may write (`src/sync/destinations.ts`).
 * @module
 */
import type { Context, Hono } from "hono";
import { isLoopback } from "../../auth/authenticator.ts";
import { RegistryError } from "../../oci/errors.ts";
import { unwritableDestination } from "../../sync/destinations.ts";
import {
  type LiveRun,
  MirrorBusyError,
  type SyncApi,
  UnknownMirrorError,
} from "../../sync/service.ts";
import { TOKEN_PATH } from "../auth.ts";
import type { AppDeps, AppEnv } from "../context.ts";

/** Where one run is read: `${RUNS_PATH}/<id>`. */
export const RUNS_PATH = "/wharf/v1/sync/runs";

/** Registers the sync routes; they answer 404 when the process runs no sync service. */
export function syncRoutes(app: Hono<AppEnv>, deps: AppDeps): void {
  app.get("/wharf/v1/sync", async (c) => {
    const sync = service(c, deps, "sync status is served");
    const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 50) || 50, 1), 1000);
    const mirror = c.req.query("mirror") || undefined;
    const [mirrors, runs] = await Promise.all([
      sync.mirrors(),
      sync.runs({ mirror, limit }),
    ]);
    return c.json({ mirrors: mirrors.filter((m) => !mirror || m.name === mirror), runs });
  });

  app.get(`${RUNS_PATH}/:id`, async (c) => {
    const sync = service(c, deps, "sync status is served");
    const id = c.req.param("id");
    const run = /^[1-9][0-9]{0,14}$/.test(id) ? await sync.findRun(Number(id)) : null;
    if (!run) throw new RegistryError("UNSUPPORTED", `no sync run ${id}`, { status: 404 });
    return c.json(run);
  });

  app.post("/wharf/v1/sync/mirrors/:mirror/runs", async (c) => {
    const sync = service(c, deps, "starting a sync run is allowed");
    const name = c.req.param("mirror");
    const mirror = sync.mirror(name);
    if (!mirror) throw unknownMirror(name);
    const auth = c.get("auth");
    const refused = unwritableDestination(auth.access, mirror);
    if (refused !== undefined) {
      throw new RegistryError(
        "DENIED",
        `starting mirror ${name} needs push on ${refused}, which it writes to`,
        { detail: [{ Type: "repository", Name: refused, Action: "push" }] },
      );
    }
    let id: number;
    try {
      id = await sync.requestRun(name, auth.user === null ? "http" : `http:${auth.user}`);
    } catch (err) {
      if (err instanceof UnknownMirrorError) throw unknownMirror(name);
      if (err instanceof MirrorBusyError) throw await busy(sync, name, err.running);
      throw err;
    }
    const run = await sync.findRun(id);
    return c.json(run ?? { id, mirror: name }, 202, { Location: `${RUNS_PATH}/${id}` });
  });
}

/** The sync service after the read rule (see the module doc); 404 when there is none. */
function service(c: Context<AppEnv>, deps: AppDeps, refusal: string): SyncApi {
  allowed(c, deps, refusal);
  if (!deps.sync) {
    throw new RegistryError("UNSUPPORTED", "mirroring is not running in this process", {
      status: 404,
    });
  }
  return deps.sync;
}

function allowed(c: Context<AppEnv>, deps: AppDeps, refusal: string): void {
  const auth = deps.auth;
  if (!auth) return;
  if (auth.authenticator.mode === "open") {
    const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
    if (isLoopback(info?.remoteAddr?.hostname ?? "")) return;
    throw new RegistryError("DENIED", `${refusal} to loopback callers only`);
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

function unknownMirror(name: string): RegistryError {
  return new RegistryError("UNSUPPORTED", `no mirror named "${name}"`, {
    status: 404,
    detail: { mirror: name },
  });
}

/** The 409 for a mirror that runs already, naming the live run (looked up when not given). */
async function busy(sync: SyncApi, name: string, running?: LiveRun): Promise<RegistryError> {
  const live = running ??
    (await sync.runs({ mirror: name, limit: 5 })).find((r) => r.outcome === "running");
  const where = live ? `: run ${live.id}, process ${live.pid} on ${live.host}` : "";
  return new RegistryError("CONFLICT", `mirror ${name} is already running${where}`, {
    status: 409,
    detail: live
      ? {
        mirror: name,
        run: { id: live.id, host: live.host, pid: live.pid },
        location: `${RUNS_PATH}/${live.id}`,
      }
      : { mirror: name },
  });
}
