/**
 * A small structured logger: one JSON object per line on stdout, with a time, a level, a
 * message and fields. Credentials must never be passed as fields.
 * @module
 */

/** Log levels, least to most severe. */
export const LEVELS = ["debug", "info", "warn", "error"] as const;

/** A log level. */
export type Level = typeof LEVELS[number];

/** Fields added to a log line. */
export type Fields = Record<string, unknown>;

/** Writes structured log lines. */
export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: Fields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: Level;
  /** Where lines go; stdout by default. */
  write?: (line: string) => void;
}

/** Creates a JSON-lines logger that drops lines below `level`. */
export function createLogger(options: LoggerOptions = {}, base: Fields = {}): Logger {
  const min = LEVELS.indexOf(options.level ?? "info");
  const write = options.write ?? ((line: string) => console.log(line));
  const emit = (level: Level) => (msg: string, fields: Fields = {}) => {
    if (LEVELS.indexOf(level) < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }));
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    with: (fields) => createLogger(options, { ...base, ...fields }),
  };
}
