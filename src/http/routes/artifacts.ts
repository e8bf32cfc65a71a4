/**
 * `GET /wharf/v1/<name>/artifacts/<digest>`: every signature, attestation, SBOM and other
 * artifact the plugins indexed for a subject, with its verification status.
 * @module
 */
import type { Hono } from "hono";
import { toDigest } from "../../oci/digest.ts";
import type { PluginStore } from "../../plugins/database.ts";
import { type AppEnv, repository } from "../context.ts";

/** Registers the artifacts route. */
export function artifactRoutes(app: Hono<AppEnv>, store: PluginStore): void {
  app.get("/wharf/v1/:name{.+}/artifacts/:digest", async (c) => {
    const name = repository(c, "pull");
    const digest = toDigest(c.req.param("digest"));
    const artifacts = await store.list(name, digest);
    return c.json({ repository: name, subject: digest, artifacts });
  });
}
