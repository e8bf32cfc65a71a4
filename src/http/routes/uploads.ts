/**
 * Blob upload routes: `POST /v2/<name>/blobs/uploads/` (session, single POST, mount),
 * `PATCH`/`PUT`/`GET`/`DELETE /v2/<name>/blobs/uploads/<id>`.
 * @module
 */
import type { Context, Hono } from "hono";
import { digestOf, toDigest } from "../../oci/digest.ts";
import { assertName } from "../../oci/names.ts";
import { RegistryError } from "../../oci/errors.ts";
import type { UploadSession } from "../../registry/uploads.ts";
import type { BlobInfo } from "../../storage/blob_store.ts";
import {
  type AppDeps,
  type AppEnv,
  bodyStream,
  contentLength,
  hasNoBody,
  repository,
  requiredQuery,
} from "../context.ts";
import { parseContentRange } from "../range.ts";

const EMPTY_DIGEST = digestOf(new Uint8Array());

/** Registers the upload routes. */
export function uploadRoutes(app: Hono<AppEnv>, { registry }: AppDeps): void {
  const { uploads } = registry;

  const start = async (c: Context<AppEnv>) => {
    const name = repository(c, "push");
    const mount = c.req.query("mount");
    if (mount !== undefined) {
      const from = c.req.query("from");
      const blob = await uploads.mount(
        name,
        toDigest(mount),
        from === undefined ? undefined : assertName(from),
        c.get("auth").access,
      );
      if (blob) return created(name, blob);
      return accepted(name, await uploads.start(name));
    }
    const digest = c.req.query("digest");
    if (digest !== undefined && (!hasNoBody(c) || toDigest(digest) === EMPTY_DIGEST)) {
      const blob = await uploads.putWhole(name, toDigest(digest), bodyStream(c), contentLength(c));
      return created(name, blob);
    }
    return accepted(name, await uploads.start(name));
  };
  app.post("/v2/:name{.+}/blobs/uploads/", start);
  app.post("/v2/:name{.+}/blobs/uploads", start);

  app.get("/v2/:name{.+}/blobs/uploads/:id", async (c) => {
    const name = repository(c, "push");
    const session = await uploads.status(name, c.req.param("id"));
    return new Response(null, { status: 204, headers: sessionHeaders(name, session) });
  });

  app.patch("/v2/:name{.+}/blobs/uploads/:id", async (c) => {
    const name = repository(c, "push");
    const id = c.req.param("id");
    const chunk = chunkOptions(c);
    const session = await uploads.append(name, id, bodyStream(c), chunk);
    return accepted(name, session);
  });

  app.put("/v2/:name{.+}/blobs/uploads/:id", async (c) => {
    const name = repository(c, "push");
    const id = c.req.param("id");
    const digest = toDigest(requiredQuery(c, "digest", "DIGEST_INVALID"));
    const last = hasNoBody(c) ? undefined : { body: bodyStream(c), ...chunkOptions(c) };
    const blob = await uploads.complete(name, id, digest, last);
    return created(name, blob);
  });

  app.delete("/v2/:name{.+}/blobs/uploads/:id", async (c) => {
    const name = repository(c, "push");
    await uploads.status(name, c.req.param("id"));
    await uploads.cancel(name, c.req.param("id"));
    return new Response(null, { status: 204 });
  });
}

/** Offset and length of a chunk from `Content-Range` and `Content-Length`. */
function chunkOptions(c: Context<AppEnv>): { offset?: number; expectedLength?: number } {
  const range = parseContentRange(c.req.header("content-range") ?? null);
  const length = contentLength(c);
  if (range === "invalid") {
    throw new RegistryError("RANGE_INVALID", "invalid Content-Range", { status: 416 });
  }
  if (range === null) return { expectedLength: length };
  const rangeLength = range.end - range.start + 1;
  if (length !== undefined && length !== rangeLength) {
    throw new RegistryError("RANGE_INVALID", "Content-Range does not match Content-Length", {
      status: 416,
    });
  }
  return { offset: range.start, expectedLength: rangeLength };
}

function sessionHeaders(name: string, session: UploadSession): Record<string, string> {
  return {
    "Location": `/v2/${name}/blobs/uploads/${session.id}`,
    "Range": `0-${Math.max(session.size - 1, 0)}`,
    "Docker-Upload-UUID": session.id,
    "Content-Length": "0",
  };
}

function accepted(name: string, session: UploadSession): Response {
  return new Response(null, { status: 202, headers: sessionHeaders(name, session) });
}

function created(name: string, blob: BlobInfo): Response {
  return new Response(null, {
    status: 201,
    headers: {
      "Location": `/v2/${name}/blobs/${blob.digest}`,
      "Docker-Content-Digest": blob.digest,
      "Content-Length": "0",
    },
  });
}
