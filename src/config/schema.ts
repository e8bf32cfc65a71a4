/**
 * The configuration file's schema (YAML), with the embedded defaults that let `wharf serve`
 * run with no file at all: SQLite and a local data directory, port 5000.
 * @module
 */
import { z } from "zod";
import { parseDuration, parseSize } from "./units.ts";
import { MirrorsSchema } from "../sync/schema.ts";

const listen = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, {
  message: 'expected "HOST:PORT", e.g. "0.0.0.0:5000"',
});

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === null) {
    ctx.addIssue({
      code: "custom",
      message: 'expected a size such as 1048576, "512MiB" or "10GB"',
    });
    return z.NEVER;
  }
  return bytes;
});

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === null) {
    ctx.addIssue({ code: "custom", message: 'expected a duration such as "30m", "24h" or "7d"' });
    return z.NEVER;
  }
  return ms;
});

const cron = z.string().min(1);

/** A `driver`-discriminated section whose driver defaults to `driver` when omitted. */
function withDefaultDriver<T extends z.ZodType>(driver: string, schema: T) {
  return z.preprocess(
    (value) =>
      value === undefined
        ? { driver }
        : typeof value === "object" && value !== null && !("driver" in value)
        ? { driver, ...value }
        : value,
    schema,
  );
}

/** Schema of the whole configuration file. Unknown keys are errors, so typos are caught. */
export const ConfigSchema = z.strictObject({
  /** Address to listen on. */
  listen: listen.default("0.0.0.0:5000"),
  /** Directory for blobs and, by default, the SQLite database. */
  data: z.string().min(1).default("./data"),
  /** Where blob bytes live: a local directory (default) or an S3-compatible bucket. */
  storage: withDefaultDriver(
    "filesystem",
    z.discriminatedUnion("driver", [
      z.strictObject({
        driver: z.literal("filesystem"),
        /** Blob directory; defaults to the data directory. */
        path: z.string().min(1).optional(),
      }),
      z.strictObject({
        driver: z.literal("s3"),
        /** Endpoint URL (`http://127.0.0.1:7480` for Ceph RGW, MinIO…); AWS when absent. */
        endpoint: z.url().optional(),
        bucket: z.string().min(3),
        region: z.string().min(1).default("us-east-1"),
        /** Key prefix inside the bucket. */
        prefix: z.string().default(""),
        forcePathStyle: z.boolean().default(true),
        /** Inline keys, or the names of environment variables holding them; else the SDK chain. */
        credentials: z.strictObject({
          accessKeyId: z.string().optional(),
          secretAccessKey: z.string().optional(),
          accessKeyIdEnv: z.string().optional(),
          secretAccessKeyEnv: z.string().optional(),
        }).optional(),
        /** Multipart part size (at least 5 MiB). */
        partSize: size.optional(),
        /** Answer blob GETs with `307` to a presigned GetObject URL instead of streaming. */
        redirect: z.boolean().default(false),
        /**
         * The endpoint presigned URLs name, when clients reach the S3 service by another address
         * than Wharf does (e.g. `https://s3.example.com` in front of an internal RGW).
         */
        redirectEndpoint: z.url().optional(),
        /** How long a presigned URL stays valid (SigV4 allows at most 7 days). */
        redirectExpiry: duration.prefault("20m").refine(
          (ms) => ms >= 1_000 && ms <= 7 * 24 * 3_600_000,
          { message: "expected a duration from 1s to 7d" },
        ),
        /** A request to the bucket idle this long fails; after 3 tries the client gets 503. */
        requestTimeout: duration.prefault("60s"),
      }),
    ]),
  ),
  /** Where names live: SQLite in the data directory (default) or PostgreSQL. */
  metadata: withDefaultDriver(
    "sqlite",
    z.discriminatedUnion("driver", [
      z.strictObject({
        driver: z.literal("sqlite"),
        /** SQLite file; defaults to `<data>/wharf.db`. */
        path: z.string().min(1).optional(),
      }),
      z.strictObject({
        driver: z.literal("postgres"),
        /** `postgres://user:password@host:port/database`, or the name of a variable holding it. */
        url: z.string().min(1).optional(),
        urlEnv: z.string().min(1).optional(),
        /**
         * Longest a statement may run (the server's `statement_timeout`); the client gives up
         * 2 s after this plus the 5 s connect timeout, so a hung server or network answers 503
         * rather than hanging requests.
         */
        queryTimeout: duration.prefault("10s").refine((ms) => ms >= 100, "at least 100ms"),
      }).refine((m) => (m.url === undefined) !== (m.urlEnv === undefined), {
        message: "set exactly one of url and urlEnv",
      }),
    ]),
  ),
  registry: z.strictObject({
    /** Mount blobs from any readable repository when a client names none (`mount` without `from`). */
    automaticMount: z.boolean().default(true),
    /** Allow DELETE of manifests, tags and blobs. */
    deleteEnabled: z.boolean().default(true),
  }).prefault({}),
  /**
   * Authentication and access rules. Absent: anonymous callers may pull, push and delete from
   * loopback only, and nothing else is allowed.
   */
  auth: z.strictObject({
    /** htpasswd file with bcrypt entries (`htpasswd -B`, or `wharf user add`). */
    htpasswd: z.string().min(1).optional(),
    token: z.strictObject({
      /** Issue Docker bearer tokens at `/token` (else Basic challenges). */
      enabled: z.boolean().default(true),
      /** PKCS#8 PEM Ed25519 key; generated in `<data>/token-signing-key.pem` when absent. */
      key: z.string().min(1).optional(),
      /** Token lifetime in seconds. */
      expiresIn: z.number().int().min(60).max(86_400).default(300),
      service: z.string().min(1).default("wharf"),
      issuer: z.string().min(1).default("wharf"),
      /** Realm URL in challenges; default: `/token` on the request's own scheme and host. */
      realm: z.url().optional(),
    }).prefault({}),
    groups: z.record(z.string(), z.array(z.string())).default({}),
    rules: z.array(z.strictObject({
      repositories: z.array(z.string().min(1)).min(1),
      users: z.array(z.string().min(1)).optional(),
      groups: z.array(z.string().min(1)).optional(),
      anonymous: z.boolean().optional(),
      actions: z.array(z.enum(["pull", "push", "delete", "*"])).min(1),
    })).default([]),
    /** Actions anonymous callers on loopback may perform anywhere (default: none). */
    loopbackAnonymous: z.array(z.enum(["pull", "push", "delete"])).default([]),
  }).optional(),
  /** Garbage collection: unreferenced blobs, untagged manifests, idle upload sessions. */
  gc: z.strictObject({
    /** Cron expression (UTC) for collection inside `wharf serve`; none runs only on demand. */
    schedule: cron.optional(),
    /** Untagged content and unused links younger than this are kept (protects pushes). */
    gracePeriod: duration.prefault("1h"),
    /** Upload sessions idle this long are removed. */
    uploadExpiry: duration.prefault("24h"),
  }).prefault({}),
  /** Retention per repository glob, applied by every GC run (first matching rule wins). */
  retention: z.array(z.strictObject({
    repositories: z.array(z.string().min(1)).min(1),
    /** Keep the newest N tags (by last push); older ones are untagged. */
    keepLast: z.number().int().min(0).optional(),
    /** Tags matching this regex are always kept. */
    keepTags: z.string().refine((re) => {
      try {
        new RegExp(re);
        return true;
      } catch {
        return false;
      }
    }, "invalid regular expression").optional(),
    /** Untagged manifests are removed after this long (instead of the grace period). */
    untaggedAfter: duration.optional(),
  })).default([]),
  /** Upload limits per repository glob (first matching rule wins). */
  limits: z.array(z.strictObject({
    repositories: z.array(z.string().min(1)).min(1),
    /** Largest single blob. */
    maxUploadSize: size.optional(),
    /** Total bytes of blobs linked to one repository. */
    quota: size.optional(),
  })).default([]),
  /** Serve HTTPS with this PEM certificate and key. */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  /**
   * Plugins: `external` lists module paths to load (relative to the config file), `disabled`
   * names built-in or external plugins to skip; every other key is one plugin's own section.
   */
  plugins: z.looseObject({
    external: z.array(z.string().min(1)).default([]),
    disabled: z.array(z.string().min(1)).default([]),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info"),
    /** One JSON access line per request (level info), without credentials or secret queries. */
    access: z.boolean().default(true),
  }).prefault({}),
  /** Upstream registries copied into this one (see `src/sync/schema.ts`). */
  mirrors: MirrorsSchema,
  /** `GET /metrics` (Prometheus): served to loopback callers; `public: true` serves everyone. */
  metrics: z.strictObject({
    public: z.boolean().default(false),
  }).prefault({}),
});

/** The validated configuration with defaults applied. */
export type Config = z.infer<typeof ConfigSchema>;
