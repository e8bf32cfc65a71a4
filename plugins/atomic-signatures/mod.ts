/**
 * Built-in plugin `atomic-signatures`: the signatures extension API that containers/image
 * (podman, skopeo), OpenShift and Pulp use for "atomic" GPG signatures (simple signing):
 *
 * ```
 * GET|HEAD /extensions/v2/<name>/signatures/<digest>
 *   → 200 {"signatures":[{"schemaVersion":2,"type":"atomic","name":"<digest>@<32 hex>","content":"<b64>"}]}
 *     (empty list when the manifest has none; 404 MANIFEST_UNKNOWN when it does not exist)
 * PUT /extensions/v2/<name>/signatures/<digest>   body: ONE such object
 *   → 201 (stored once: the same content again is accepted and not duplicated)
 * ```
 *
 * GET needs pull, PUT push on the repository. A PUT is validated (name, schemaVersion 2, type
 * atomic, base64 content ≤ 4 MiB, manifest present in the repository; a readable OpenPGP
 * payload must be an atomic signature of that digest) but its signature is **not verified**:
 * each is recorded in the artifact index as `kind: "signature"`, `type: "atomic"`,
 * `status: "not-checked"`, with the issuer key id when readable. Signatures are removed with
 * their manifest. They exist only in this plugin's table, so it is declared carried: `wharf
 * migrate` copies it (and these index records) to the target registry.
 *
 * Clients use this API only when `GET /v2/` answers `X-Registry-Supports-Signatures: 1`.
 * @module
 */
import { type Digest, type Plugin, RegistryError } from "../../src/plugins/api.ts";
import { digestOf, toDigest } from "../../src/oci/digest.ts";
import {
  extensionSignature,
  MAX_SIGNATURE_BYTES,
  parseSignaturePut,
  SignatureError,
} from "./signature.ts";

/** Largest PUT body: base64 of the largest signature plus the JSON around it. */
const MAX_BODY_BYTES = Math.ceil(MAX_SIGNATURE_BYTES / 3) * 4 + 64 * 1024;

const plugin: Plugin = {
  name: "atomic-signatures",
  apiVersion: 2,
  description: "signatures extension API for atomic (GPG) signatures of podman, skopeo, Pulp",

  async setup(ctx) {
    ctx.advertise({ "X-Registry-Supports-Signatures": "1" });
    // Clients PUT the signatures: they exist only here, so `wharf migrate` must carry them.
    const table = ctx.db.table("signatures", { carry: true });
    await ctx.db.migrate([{
      sqlite: `CREATE TABLE ${table} (
         repository TEXT NOT NULL, manifest TEXT NOT NULL, name TEXT NOT NULL,
         content BLOB NOT NULL, content_digest TEXT NOT NULL, created_at INTEGER NOT NULL,
         PRIMARY KEY (repository, manifest, content_digest),
         UNIQUE (repository, manifest, name)
       ) STRICT;`,
      // PostgreSQL has no implicit rowid: an identity column of that name keeps the order.
      postgres: `CREATE TABLE ${table} (
         rowid bigint GENERATED ALWAYS AS IDENTITY,
         repository text COLLATE "C" NOT NULL, manifest text COLLATE "C" NOT NULL,
         name text COLLATE "C" NOT NULL, content bytea NOT NULL,
         content_digest text COLLATE "C" NOT NULL, created_at bigint NOT NULL,
         PRIMARY KEY (repository, manifest, content_digest),
         UNIQUE (repository, manifest, name)
       );`,
    }]);
    const find = (repository: string, digest: Digest, contentDigest: string, name: string) =>
      ctx.db.get(
        `SELECT name, content_digest FROM ${table}
         WHERE repository = ? AND manifest = ? AND (content_digest = ? OR name = ?)`,
        repository,
        digest,
        contentDigest,
        name,
      );

    const requireManifest = async (repository: string, digest: Digest) => {
      if (!await ctx.content.getManifest(repository, digest)) {
        throw new RegistryError("MANIFEST_UNKNOWN", "manifest unknown to registry", {
          detail: { digest },
        });
      }
    };

    ctx.mount("/extensions/v2", (app) => {
      // Hono answers HEAD with this GET handler, without the body.
      app.get("/:name{.+}/signatures/:digest", async (c) => {
        const repository = c.req.param("name");
        ctx.authorize(c, repository, "pull");
        const digest = toDigest(c.req.param("digest"));
        await requireManifest(repository, digest);
        const rows = await ctx.db.all(
          `SELECT name, content FROM ${table} WHERE repository = ? AND manifest = ?
           ORDER BY created_at, rowid`,
          repository,
          digest,
        );
        return c.json({
          signatures: rows.map((r) =>
            extensionSignature(r.name as string, r.content as Uint8Array)
          ),
        });
      });

      app.put("/:name{.+}/signatures/:digest", async (c) => {
        const repository = c.req.param("name");
        ctx.authorize(c, repository, "push");
        const digest = toDigest(c.req.param("digest"));
        await requireManifest(repository, digest);
        const text = await readBody(c.req.raw);
        let signature;
        try {
          signature = parseSignaturePut(JSON.parse(text), digest);
        } catch (err) {
          if (err instanceof SyntaxError) throw invalid("the body is not JSON");
          if (err instanceof SignatureError) throw invalid(err.message);
          throw err;
        }
        const contentDigest = digestOf(signature.bytes);
        let existing = await find(repository, digest, contentDigest, signature.name);
        let stored = false;
        if (!existing) {
          const inserted = await ctx.db.run(
            `INSERT INTO ${table} (repository, manifest, name, content, content_digest, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
            repository,
            digest,
            signature.name,
            signature.bytes,
            contentDigest,
            Date.now(),
          );
          stored = inserted > 0;
          // Another request (maybe on another process) stored this content or name meanwhile.
          if (!stored) existing = await find(repository, digest, contentDigest, signature.name);
        }
        if (existing && existing.content_digest !== contentDigest) {
          throw invalid(`another signature is stored as ${signature.name}`);
        }
        if (stored) {
          ctx.log.info("atomic signature stored", {
            repository,
            digest,
            name: signature.name,
            keyId: signature.detail.keyId,
          });
        }
        await ctx.artifacts.record({
          repository,
          subject: digest,
          digest: contentDigest,
          kind: "signature",
          type: "atomic",
          status: "not-checked",
          detail: {
            name: existing?.name ?? signature.name,
            size: signature.bytes.length,
            ...signature.detail,
          },
        });
        return new Response(null, {
          status: 201,
          headers: {
            Location: `/extensions/v2/${repository}/signatures/${digest}`,
            "Content-Length": "0",
          },
        });
      });
    });

    ctx.on("manifest.deleted", async (event) => {
      await ctx.db.run(
        `DELETE FROM ${table} WHERE repository = ? AND manifest = ?`,
        event.repository,
        event.digest,
      );
    });
  },
};

export default plugin;

function invalid(message: string): RegistryError {
  return new RegistryError("MANIFEST_INVALID", `invalid signature: ${message}`, { status: 400 });
}

/** The request body as text, refusing more than {@link MAX_BODY_BYTES}. */
async function readBody(request: Request): Promise<string> {
  const tooLarge = () =>
    new RegistryError("SIZE_INVALID", `signature body exceeds ${MAX_BODY_BYTES} bytes`, {
      status: 413,
    });
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body ?? new ReadableStream<Uint8Array>()) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}
