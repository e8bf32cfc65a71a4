/**
 * Blob routes: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with single byte ranges; a GET
 * answers `307` to a presigned URL when the blob store offers one (`storage.redirect`).
 * @module
 */
import type { Hono } from "hono";
import { toDigest } from "../../oci/digest.ts";
import { RegistryError } from "../../oci/errors.ts";
import { type AppDeps, type AppEnv, repository } from "../context.ts";
import { parseRange } from "../range.ts";

/** Registers the blob routes. */
export function blobRoutes(app: Hono<AppEnv>, { registry }: AppDeps): void {
  app.on(["GET", "HEAD"], "/v2/:name{.+}/blobs/:digest", async (c) => {
    const name = repository(c, "pull");
    const digest = toDigest(c.req.param("digest"));
    const { size, local } = await registry.blobs.locate(name, digest);
    // Access checked and the blob linked here: object storage may serve the bytes (a Range
    // header is re-sent there by the client). HEAD is answered here, never redirected.
    if (c.req.method === "GET" && local) {
      const location = await registry.blobs.redirectUrl(digest);
      if (location !== null) {
        return new Response(null, {
          status: 307,
          headers: { "Location": location, "Docker-Content-Digest": digest, "Content-Length": "0" },
        });
      }
    }
    const headers: Record<string, string> = {
      "Docker-Content-Digest": digest,
      "Content-Type": "application/octet-stream",
      "Accept-Ranges": "bytes",
      "ETag": `"${digest}"`,
      "Cache-Control": "max-age=31536000",
    };
    // A pull-through miss too: its size is the upstream's, its range is cut from the download.
    const range = parseRange(c.req.header("range") ?? null, size);
    if (range === "unsatisfiable") {
      throw new RegistryError("RANGE_INVALID", "requested range not satisfiable", {
        status: 416,
        headers: { "Content-Range": `bytes */${size}` },
      });
    }
    const status = range ? 206 : 200;
    if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end}/${size}`;
    headers["Content-Length"] = String(range ? range.end - range.start + 1 : size);
    if (c.req.method === "HEAD") return new Response(null, { status, headers });
    const body = await registry.blobs.read(name, digest, range ?? undefined);
    return new Response(body, { status, headers });
  });

  app.delete("/v2/:name{.+}/blobs/:digest", async (c) => {
    const name = repository(c, "delete");
    const digest = toDigest(c.req.param("digest"));
    if (!registry.options.deleteEnabled) throw deleteDisabled();
    await registry.blobs.delete(name, digest);
    return new Response(null, { status: 202, headers: { "Content-Length": "0" } });
  });
}

/** The error for deletes when the registry is configured without them. */
export function deleteDisabled(): RegistryError {
  return new RegistryError("UNSUPPORTED", "deletes are disabled on this registry");
}
