/**
 * The `mirrors:` section of the configuration: one entry per upstream registry to copy from.
 * Pure zod, imported by `src/config/schema.ts`.
 *
 * ```yaml
 * mirrors:
 *   - name: hub
 *     upstream: https://registry-1.docker.io
 *     credentials: { username: me, passwordEnv: HUB_TOKEN }
 *     repositories: [library/alpine, "team/*"]   # a glob lists the upstream catalog
 *     tags: { include: ["^v?\\d"], exclude: ["-rc"], semver: ">=1.2 <2", newest: 5 }
 *     platforms: [linux/amd64, linux/arm64]
 *     destination: { prefix: mirror/, stripPrefix: library/ }
 *     schedule: "0 3 * * *"       # cron (UTC), or an interval such as "30m"; absent: on demand
 * ```
 * @module
 */
import { z } from "zod";
import semver from "semver";
import { parseDuration } from "../config/units.ts";
import { scheduleProblem } from "./scheduler.ts";

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === null) {
    ctx.addIssue({ code: "custom", message: 'expected a duration such as "500ms", "30s", "5m"' });
    return z.NEVER;
  }
  return ms;
});

/** How long a pulled-through tag is served before the upstream is asked again. */
const DEFAULT_TAG_TTL = "5m";

const regex = z.string().refine((re) => {
  try {
    new RegExp(re);
    return true;
  } catch {
    return false;
  }
}, "invalid regular expression");

const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, {
  message: 'expected "os/architecture[/variant]", e.g. "linux/amd64"',
});

/** One mirror. */
export const MirrorSchema = z.strictObject({
  /** Unique name: used by `wharf sync run NAME`, in the history and in logs. */
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/),
  /** Upstream registry base URL, `https://host[:port]` (`http://` for plain HTTP). */
  upstream: z.url().refine((url) => {
    const parsed = new URL(url);
    return (parsed.protocol === "http:" || parsed.protocol === "https:") &&
      (parsed.pathname === "/" || parsed.pathname === "");
  }, "expected http(s)://host[:port] without a path"),
  /** Credentials: inline, from environment variables, or a file holding `user:password`. */
  credentials: z.strictObject({
    username: z.string().optional(),
    password: z.string().optional(),
    usernameEnv: z.string().optional(),
    passwordEnv: z.string().optional(),
    file: z.string().optional(),
  }).optional(),
  tls: z.strictObject({
    /** Must stay true: Deno verifies certificates (add roots with `caFile`). */
    verify: z.literal(true, {
      message: "tls.verify: false is not supported; add the upstream's CA with tls.caFile",
    }).default(true),
    /** PEM file of extra root certificates for this upstream. */
    caFile: z.string().min(1).optional(),
  }).prefault({}),
  /** Upstream repositories; an entry with `*`, `?`, `[` or `{` is a glob over the catalog. */
  repositories: z.array(z.string().min(1)).min(1),
  tags: z.strictObject({
    /** Keep tags matching any of these regexes (default: all). */
    include: z.array(regex).default([]),
    /** Drop tags matching any of these regexes. */
    exclude: z.array(regex).default([]),
    /** Keep tags that are versions within this range (npm semver syntax, e.g. `>=1.2 <2`). */
    semver: z.string().refine((r) => semver.validRange(r, { loose: true }) !== null, {
      message: "invalid semver range",
    }).optional(),
    /** Keep only the newest N of the remaining tags (by version, then by name). */
    newest: z.number().int().min(1).optional(),
  }).prefault({}),
  /** Platforms copied from image indexes (default: all). */
  platforms: z.array(platform).default([]),
  /** Attachments copied with each image. */
  attachments: z.strictObject({
    /** cosign `sha256-<hex>.sig|.att|.sbom` tags and the `sha256-<hex>` referrers tag. */
    cosign: z.boolean().default(true),
    /** OCI referrers: `true` for all, a list of artifact types, or `false`. */
    referrers: z.union([z.boolean(), z.array(z.string().min(1))]).default(true),
    /** Atomic (GPG) signatures through the extension API, when the upstream advertises it. */
    atomic: z.boolean().default(true),
  }).prefault({}),
  destination: z.strictObject({
    /** Removed from the start of upstream names (e.g. `library/`). */
    stripPrefix: z.string().default(""),
    /** Added in front of local names (e.g. `mirror/hub/`). */
    prefix: z.string().default(""),
  }).prefault({}),
  /**
   * Serve pulls that miss locally from the upstream (manifest fetched and served, blobs streamed
   * while stored, attachments copied in the background), in the repositories this mirror covers.
   * `true` or `{ tagTtl }`: a tag pull-through wrote is checked upstream again on a pull once its
   * last check is `tagTtl` old (default 5m; 0 checks on every pull). Absent or `false`: off.
   */
  pullThrough: z.preprocess(
    (value) => value === true ? {} : value === false ? undefined : value,
    z.strictObject({ tagTtl: duration.prefault(DEFAULT_TAG_TTL) }).optional(),
  ),
  /** Cron expression (UTC, 5 or 6 fields) or an interval (`30m`); absent: on demand only. */
  schedule: z.string().min(1).superRefine((value, ctx) => {
    const problem = scheduleProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }).optional(),
  /**
   * How long a run stays claimed without news from its process (renewed every third of it while
   * it runs). When several processes share PostgreSQL, a killed process's mirror is free again
   * this long after it died.
   */
  lease: duration.prefault("30s").refine((ms) => ms >= 1000, "lease: at least 1s"),
  /** Images (and blobs within one image) copied at the same time. */
  concurrency: z.number().int().min(1).max(64).default(4),
  retries: z.strictObject({
    /** Extra attempts after a failure (429, 5xx, network, truncated or wrong content). */
    attempts: z.number().int().min(0).max(20).default(4),
    /** First delay; doubled per attempt, with jitter. */
    delay: duration.prefault("500ms"),
    /** Longest delay, also the cap on `Retry-After`. */
    maxDelay: duration.prefault("30s"),
  }).prefault({}),
  /** Per request: time to the response headers, and longest silence while reading a body. */
  timeout: duration.prefault("60s"),
  /** Copy an image only when a cosign signature verifies with one of `keys`. */
  onlyVerified: z.boolean().default(false),
  /** PEM public key files for `onlyVerified`. */
  keys: z.array(z.string().min(1)).default([]),
  /** Remove tags this mirror copied earlier and the upstream no longer offers. */
  deleteMissing: z.boolean().default(false),
}).refine((m) => !m.onlyVerified || m.keys.length > 0, {
  message: "onlyVerified needs at least one key in keys",
  path: ["keys"],
});

/** A validated mirror with defaults applied. */
export type MirrorConfig = z.infer<typeof MirrorSchema>;

/** The `mirrors:` list; names must be unique. */
export const MirrorsSchema = z.array(MirrorSchema).default([]).refine(
  (mirrors) => new Set(mirrors.map((m) => m.name)).size === mirrors.length,
  { message: "mirror names must be unique" },
);
