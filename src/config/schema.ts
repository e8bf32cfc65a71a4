/**
 * The configuration file's schema (YAML), with the embedded defaults that let `wharf serve`
 * run with no file at all: SQLite and a local data directory, port 5000.
 * @module
 */
import { z } from "zod";

const listen = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, {
  message: 'expected "HOST:PORT", e.g. "0.0.0.0:5000"',
});

/** Schema of the whole configuration file. Unknown keys are errors, so typos are caught. */
export const ConfigSchema = z.strictObject({
  /** Address to listen on. */
  listen: listen.default("0.0.0.0:5000"),
  /** Directory for blobs and, by default, the SQLite database. */
  data: z.string().min(1).default("./data"),
  storage: z.strictObject({
    driver: z.literal("filesystem").default("filesystem"),
    /** Blob directory; defaults to the data directory. */
    path: z.string().min(1).optional(),
  }).prefault({}),
  metadata: z.strictObject({
    driver: z.literal("sqlite").default("sqlite"),
    /** SQLite file; defaults to `<data>/wharf.db`. */
    path: z.string().min(1).optional(),
  }).prefault({}),
  registry: z.strictObject({
    /** Mount blobs from any readable repository when a client names none (`mount` without `from`). */
    automaticMount: z.boolean().default(true),
    /** Allow DELETE of manifests, tags and blobs. */
    deleteEnabled: z.boolean().default(true),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  }).prefault({}),
});

/** The validated configuration with defaults applied. */
export type Config = z.infer<typeof ConfigSchema>;
