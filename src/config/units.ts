/**
 * Sizes and durations as the config writes them: `512MiB`, `10GB`, `1048576`; `90s`, `30m`,
 * `24h`, `7d`.
 * @module
 */

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** Bytes of a size (number or string); null when it is not one. */
export function parseSize(value: string | number): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!match) return null;
  const unit = SIZE_UNITS[match[2].toLowerCase()];
  return unit === undefined ? null : Math.round(Number(match[1]) * unit);
}

/** Milliseconds of a duration (`30m`, `24h`; a bare number is seconds); null when it is not one. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return value >= 0 ? value * 1000 : null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!match) return null;
  return Math.round(Number(match[1]) * DURATION_UNITS[(match[2] ?? "s").toLowerCase()]);
}

/** Bytes in binary units, one decimal (`12.5 MiB`). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
