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
    const content = await readLimited(bodyStream(c), contentLength(c), MAX_MANIFEST_BYTES);
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

/** Reads a whole body of at most `limit` bytes; larger bodies are refused with 413 early. */
async function readLimited(
  body: ReadableStream<Uint8Array>,
  declared: number | undefined,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () =>
    new RegistryError("MANIFEST_INVALID", `manifest exceeds ${limit} bytes`, { status: 413 });
  if (declared !== undefined && declared > limit) {
    await body.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
