/**
 * Listing routes: tags (`/v2/<name>/tags/list`), the catalog (`/v2/_catalog`) and referrers
 * (`/v2/<name>/referrers/<digest>`).
 * @module
 */
import type { Hono } from "hono";
import { toDigest } from "../../oci/digest.ts";
import { OCI_INDEX } from "../../oci/media_types.ts";
import { type AppDeps, type AppEnv, repository } from "../context.ts";
import { nextLink, pageRequest } from "../pagination.ts";

/** Registers the listing routes. */
export function listingRoutes(app: Hono<AppEnv>, { registry }: AppDeps): void {
  app.get("/v2/_catalog", async (c) => {
    const request = pageRequest(c.req.query("n"), c.req.query("last"));
    const access = c.get("auth").catalog();
    // Only readable repositories are listed: keep paging until the page is full.
    const repositories: string[] = [];
    let last = request.last;
    let more = false;
    while (request.limit > 0) {
      const page = await registry.metadata.listRepositories({ last, limit: request.limit });
      for (const name of page.items) {
        if (!access.can(name, "pull")) continue;
        if (repositories.length === request.limit) {
          more = true;
          break;
        }
        repositories.push(name);
      }
      if (more || !page.more) break;
      last = page.items.at(-1);
    }
    const headers: Record<string, string> = {};
    if (more) {
      headers["Link"] = nextLink("/v2/_catalog", request, repositories.at(-1)!);
    }
    return c.json({ repositories }, 200, headers);
  });

  app.get("/v2/:name{.+}/tags/list", async (c) => {
    const name = repository(c, "pull");
    const request = pageRequest(c.req.query("n"), c.req.query("last"));
    const listed = await registry.manifests.tags(name, request);
    const page = request.limit === 0 ? { items: [], more: false } : listed;
    const headers: Record<string, string> = {};
    if (page.more) headers["Link"] = nextLink(`/v2/${name}/tags/list`, request, page.items.at(-1)!);
    return c.json({ name, tags: page.items }, 200, headers);
  });

  app.get("/v2/:name{.+}/referrers/:digest", async (c) => {
    const name = repository(c, "pull");
    const digest = toDigest(c.req.param("digest"));
    const artifactType = c.req.query("artifactType") || undefined;
    const referrers = await registry.manifests.referrers(name, digest, artifactType);
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers });
    const headers: Record<string, string> = { "Content-Type": OCI_INDEX };
    if (artifactType) headers["OCI-Filters-Applied"] = "artifactType";
    return new Response(body, { headers });
  });
}
