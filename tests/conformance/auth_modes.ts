/**
 * Runs the conformance workflows once per authentication mode: `none` (auth not configured),
 * `basic` (htpasswd with `token.enabled: false`; the client sends `Authorization: Basic`), and
 * `bearer` (htpasswd behind Wharf's token endpoint; the client does the Docker token flow). In
 * both auth modes the one user is allowed everything, so every assertion of the suite holds
 * unchanged.
 * @module
 */
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { startRegistry, type TestRegistry } from "../harness.ts";
import { postgresUnavailableReason, startPostgres } from "../postgres.ts";
import { cephMissing, s3StorageConfig, startCephRgw } from "../ceph_rgw.ts";
import { type AuthMode, type Client, createClient, expectStatus } from "./http.ts";

export type { AuthMode } from "./http.ts";

/** Every mode each workflow runs in. */
export const AUTH_MODES: readonly AuthMode[] = ["none", "basic", "bearer"];

const USER = { username: "conformance", password: "conformance-password" };

/** A registry for one workflow run and the client that authenticates to it in `mode`. */
export interface ConformanceTarget {
  registry: TestRegistry;
  client: Client;
  close(): Promise<void>;
}

/**
 * Where the registry keeps its data: the embedded stores (SQLite + a directory), or PostgreSQL
 * + an S3 bucket on Ceph RGW, both started for the run.
 */
export type Backend = "embedded" | "scaleout";

/** Why the PostgreSQL + S3 runs cannot happen here, or null. */
export const SCALEOUT_UNAVAILABLE = postgresUnavailableReason() ?? cephMissing();
if (SCALEOUT_UNAVAILABLE) {
  console.warn(`conformance on PostgreSQL + S3 skipped — ${SCALEOUT_UNAVAILABLE}`);
}

/** Starts a fresh registry configured for `mode`, and a client for it. */
export async function startConformanceRegistry(
  mode: AuthMode,
  backend: Backend = "embedded",
): Promise<ConformanceTarget> {
  if (backend === "scaleout") return await startScaleoutRegistry();
  if (mode === "none") {
    const registry = await startRegistry();
    return { registry, client: createClient(registry.url), close: () => registry.close() };
  }
  const authDir = await Deno.makeTempDir({ prefix: "wharf-conformance-auth-" });
  let registry: TestRegistry;
  try {
    const htpasswd = join(authDir, "htpasswd");
    // Cost 5, as `htpasswd -B` uses by default; the server caches successful checks anyway.
    await Deno.writeTextFile(htpasswd, `${USER.username}:${bcrypt.hashSync(USER.password, 5)}\n`);
    registry = await startRegistry({
      config: {
        auth: {
          htpasswd,
          token: { enabled: mode === "bearer", service: "wharf" },
          rules: [{ repositories: ["**"], users: [USER.username], actions: ["*"] }],
        },
      },
    });
  } catch (err) {
    await Deno.remove(authDir, { recursive: true });
    throw err;
  }
  const client = createClient(registry.url, { mode, credentials: USER });
  const target = {
    registry,
    client,
    async close() {
      await registry.close();
      await Deno.remove(authDir, { recursive: true });
    },
  };
  try {
    // Auth is really on: anonymous callers are challenged in the mode's scheme, and the client
    // gets through.
    const anonymous = await fetch(`${registry.url}/v2/`);
    await anonymous.body?.cancel();
    const challenge = anonymous.headers.get("WWW-Authenticate");
    const scheme = mode === "basic" ? "Basic" : "Bearer";
    if (anonymous.status !== 401 || !challenge?.startsWith(`${scheme} `)) {
      throw new Error(
        `anonymous GET /v2/ -> ${anonymous.status} ${challenge}, expected 401 with a ${scheme} ` +
          "challenge",
      );
    }
    expectStatus(await client.request("GET", "/v2/"), 200);
  } catch (err) {
    await target.close();
    throw err;
  }
  return target;
}

/**
 * Registers a workflow as one test per auth mode on the embedded stores, plus one without auth
 * on PostgreSQL + S3.
 */
export function registerWorkflow(
  title: string,
  workflow: (t: Deno.TestContext, mode: AuthMode, backend?: Backend) => Promise<void>,
): void {
  for (const mode of AUTH_MODES) {
    Deno.test(`conformance (${mode}): ${title}`, (t) => workflow(t, mode));
  }
  Deno.test({
    name: `conformance (none, PostgreSQL + S3): ${title}`,
    ignore: SCALEOUT_UNAVAILABLE !== null,
    fn: (t) => workflow(t, "none", "scaleout"),
  });
}

/** An unauthenticated registry on a fresh PostgreSQL database and S3 bucket. */
async function startScaleoutRegistry(): Promise<ConformanceTarget> {
  const postgres = await startPostgres();
  const rgw = await startCephRgw().catch(async (err) => {
    await postgres.stop();
    throw err;
  });
  try {
    const bucket = await rgw.bucket("conformance");
    const registry = await startRegistry({
      config: {
        storage: s3StorageConfig(bucket),
        metadata: { driver: "postgres", url: postgres.url },
      },
    });
    return {
      registry,
      client: createClient(registry.url),
      async close() {
        await registry.close();
        await rgw.stop();
        await postgres.stop();
      },
    };
  } catch (err) {
    await rgw.stop();
    await postgres.stop();
    throw err;
  }
}
