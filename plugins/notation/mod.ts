/**
 * Built-in plugin `notation`: indexes Notation (Notary Project) signatures pushed as OCI 1.1
 * referrers — `artifactType` (or config media type) `application/vnd.cncf.notary.signature`,
 * one envelope layer `application/jose+json` or `application/cose` — and records each in the
 * artifact index (`kind: "signature"`, `type: "notation"`).
 *
 * Signatures are **not verified yet**: every well-formed one is recorded with
 * `status: "not-checked"` (detail: envelope media type and the certificate thumbprints of the
 * `io.cncf.notary.x509chain.thumbprint#S256` annotation); a malformed one (wrong layer count or
 * type, missing thumbprints, envelope that is not a JWS/COSE message) with `status: "invalid"`.
 * Verification against trust stores and trust policies comes later.
 *
 * Mirrors copy Notation referrers along with their subjects (`sync.attachments`), and
 * `GET /wharf/v1/plugins/notation/signatures?thumbprint=<sha256 hex>` lists what a
 * certificate signed, in repositories the caller may pull.
 * @module
 */
import {
  type Digest,
  type ManifestEvent,
  type Plugin,
  type PluginContext,
  type PluginQueries,
  RegistryError,
} from "../../src/plugins/api.ts";
import {
  envelopeProblem,
  NOTATION_ARTIFACT,
  notationSignature,
  THUMBPRINT_ANNOTATION,
} from "./signature.ts";

const MAX_ENVELOPE_BYTES = 4 * 1024 * 1024;
const MAX_RESULTS = 1000;

const plugin: Plugin = {
  name: "notation",
  apiVersion: 2,
  description: "indexes Notation signatures (referrers); verification comes later",

  async setup(ctx) {
    const signatures = ctx.db.table("signatures");
    const thumbprints = ctx.db.table("thumbprints");
    await ctx.db.migrate([{
      sqlite: `CREATE TABLE ${signatures} (
         repository TEXT NOT NULL, subject TEXT NOT NULL, digest TEXT NOT NULL,
         envelope_media_type TEXT, status TEXT NOT NULL, indexed_at INTEGER NOT NULL,
         PRIMARY KEY (repository, digest)
       ) STRICT;
       CREATE INDEX ${signatures}_by_subject ON ${signatures}(repository, subject);
       CREATE TABLE ${thumbprints} (
         repository TEXT NOT NULL, digest TEXT NOT NULL, thumbprint TEXT NOT NULL,
         PRIMARY KEY (repository, digest, thumbprint)
       ) STRICT;
       CREATE INDEX ${thumbprints}_by_thumbprint ON ${thumbprints}(thumbprint);`,
      postgres: `CREATE TABLE ${signatures} (
         repository text COLLATE "C" NOT NULL, subject text COLLATE "C" NOT NULL,
         digest text COLLATE "C" NOT NULL, envelope_media_type text, status text NOT NULL,
         indexed_at bigint NOT NULL,
         PRIMARY KEY (repository, digest)
       );
       CREATE INDEX ${signatures}_by_subject ON ${signatures}(repository, subject);
       CREATE TABLE ${thumbprints} (
         repository text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL,
         thumbprint text COLLATE "C" NOT NULL,
         PRIMARY KEY (repository, digest, thumbprint)
       );
       CREATE INDEX ${thumbprints}_by_thumbprint ON ${thumbprints}(thumbprint);`,
    }]);

    const forget = async (db: PluginQueries, repository: string, digest: Digest) => {
      await db.run(
        `DELETE FROM ${thumbprints} WHERE repository = ? AND digest IN
           (SELECT digest FROM ${signatures} WHERE repository = ? AND (digest = ? OR subject = ?))`,
        repository,
        repository,
        digest,
        digest,
      );
      await db.run(
        `DELETE FROM ${signatures} WHERE repository = ? AND (digest = ? OR subject = ?)`,
        repository,
        digest,
        digest,
      );
    };

    ctx.on("manifest.pushed", async (event) => {
      const found = notationSignature(event.manifest);
      if (!found) return;
      const problems = [...found.problems];
      if (found.envelope && problems.length === 0) {
        const problem = await checkEnvelope(ctx, event, found.envelope);
        if (problem) problems.push(problem);
      }
      const status = problems.length > 0 ? "invalid" : "not-checked";
      if (problems.length > 0) {
        ctx.log.warn("malformed Notation signature", {
          repository: event.repository,
          digest: event.digest,
          problems,
        });
      }
      await ctx.db.transaction(async (tx) => {
        await forget(tx, event.repository, event.digest);
        // An upsert: the same signature pushed through two processes at once is stored once.
        await tx.run(
          `INSERT INTO ${signatures}
             (repository, subject, digest, envelope_media_type, status, indexed_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (repository, digest) DO UPDATE SET subject = excluded.subject,
             envelope_media_type = excluded.envelope_media_type, status = excluded.status,
             indexed_at = excluded.indexed_at`,
          event.repository,
          found.subject,
          event.digest,
          found.envelope?.mediaType ?? null,
          status,
          Date.now(),
        );
        for (const thumbprint of found.thumbprints) {
          await tx.run(
            `INSERT INTO ${thumbprints} (repository, digest, thumbprint) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING`,
            event.repository,
            event.digest,
            thumbprint,
          );
        }
      });
      await ctx.artifacts.record({
        repository: event.repository,
        subject: found.subject,
        digest: event.digest,
        kind: "signature",
        type: "notation",
        status,
        detail: {
          envelopeMediaType: found.envelope?.mediaType ?? null,
          [THUMBPRINT_ANNOTATION]: found.thumbprints,
          verification: "not implemented yet",
          ...(problems.length > 0 ? { problems } : {}),
        },
      });
    });

    ctx.on("manifest.deleted", (event) => forget(ctx.db, event.repository, event.digest));

    ctx.on("sync.attachments", () => [{ kind: "referrers", artifactType: NOTATION_ARTIFACT }]);

    ctx.routes((app) => {
      app.get("/signatures", async (c) => {
        const thumbprint = (c.req.query("thumbprint") ?? "").toLowerCase();
        if (!/^[0-9a-f]{64}$/.test(thumbprint)) {
          throw new RegistryError(
            "UNSUPPORTED",
            'query parameter "thumbprint" must be a SHA-256 hex digest',
            { status: 400 },
          );
        }
        const rows = await ctx.db.all(
          `SELECT s.repository, s.subject, s.digest, s.envelope_media_type AS "envelopeMediaType",
                  s.status
           FROM ${thumbprints} t JOIN ${signatures} s
             ON s.repository = t.repository AND s.digest = t.digest
           WHERE t.thumbprint = ? ORDER BY s.repository, s.subject, s.digest`,
          thumbprint,
        );
        const allowed = new Map<string, boolean>();
        const visible = rows.filter((row) => {
          const repository = row.repository as string;
          if (!allowed.has(repository)) allowed.set(repository, mayPull(ctx, c, repository));
          return allowed.get(repository);
        });
        return c.json({
          thumbprint,
          signatures: visible.slice(0, MAX_RESULTS),
          truncated: visible.length > MAX_RESULTS,
        });
      });
    });
  },
};

export default plugin;

async function checkEnvelope(
  ctx: PluginContext,
  event: ManifestEvent,
  envelope: { mediaType: string; digest: Digest; size: number },
): Promise<string | null> {
  if (envelope.size > MAX_ENVELOPE_BYTES) return `envelope is larger than ${MAX_ENVELOPE_BYTES}`;
  try {
    const bytes = await ctx.content.readBlob(event.repository, envelope.digest, MAX_ENVELOPE_BYTES);
    return envelopeProblem(envelope.mediaType, bytes);
  } catch (err) {
    if (err instanceof RegistryError) return `envelope not readable: ${err.message}`;
    throw err;
  }
}

function mayPull(ctx: PluginContext, c: unknown, repository: string): boolean {
  try {
    ctx.authorize(c, repository, "pull");
    return true;
  } catch {
    return false;
  }
}
