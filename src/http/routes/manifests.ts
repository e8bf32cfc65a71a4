/**
 * Manifest routes: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.
 * @module
 */
import type { Hono } from "hono";
import { RegistryError } from "../../oci/errors.ts";
import { MAX_MANIFEST_BYTES } from "../../oci/manifest.ts";
import { parseReference } from "../../oci/names.ts";
import { type AppDeps, type AppEnv, bodyStream, contentLength, repository } from "../context.ts";
import { acceptsManifest } from "../negotiation.ts";
import { readAtMost } from "../../io/read.ts";
import { deleteDisabled } from "./blobs.ts";

/** Registers the manifest routes. */
export function manifestRoutes(app: Hono<AppEnv>, { registry }: AppDeps): void {
  const { manifests } = registry;

  app.on(["GET", "HEAD"], "/v2/:name{.+}/manifests/:reference", async (c) => {
    const name = repository(c, "pull");
    const reference = parseReference(c.req.param("reference"), "read");
    const auth = c.get("auth");
    const manifest = await manifests.get(name, reference, {
      user: auth.user,
      canPush: auth.access.can(name, "push"),
    });
    if (!acceptsManifest(c.req.raw.headers.get("accept"), manifest.mediaType)) {
      throw new RegistryError("MANIFEST_UNKNOWN", "manifest unknown in the accepted media types", {
        detail: { mediaType: manifest.mediaType },
      });
    }
    const headers = {
      "Content-Type": manifest.mediaType,
      "Content-Length": String(manifest.size),
      "Docker-Content-Digest": manifest.digest,
      "ETag": `"${manifest.digest}"`,
    };
    if (c.req.method === "HEAD") return new Response(null, { headers });
    return new Response(manifest.content, { headers });
  });

  app.put("/v2/:name{.+}/manifests/:reference", async (c) => {
    const name = repository(c, "push");
    const reference = parseReference(c.req.param("reference"), "write");
    const content = await readAtMost(
      bodyStream(c),
      MAX_MANIFEST_BYTES,
      () =>
        new RegistryError("MANIFEST_INVALID", `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`, {
          status: 413,
        }),
      contentLength(c),
    );
    const pushed = await manifests.put(
      name,
      reference,
      content,
      c.req.header("content-type") ?? null,
    );
    const headers: Record<string, string> = {
      "Location": `/v2/${name}/manifests/${pushed.digest}`,
      "Docker-Content-Digest": pushed.digest,
      "Content-Length": "0",
    };
    if (pushed.subject) headers["OCI-Subject"] = pushed.subject;
    return new Response(null, { status: 201, headers });
  });

  app.delete("/v2/:name{.+}/manifests/:reference", async (c) => {
    const name = repository(c, "delete");
    const reference = parseReference(c.req.param("reference"), "read");
    if (!registry.options.deleteEnabled) throw deleteDisabled();
    await manifests.delete(name, reference);
    return new Response(null, { status: 202, headers: { "Content-Length": "0" } });
  });
}
