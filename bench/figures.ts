/**
 * What the benchmarks measure and print: settings from the environment, a figure's runs and
 * their median, and a plain-text table.
 * @module
 */

/** One figure: its label, unit, and the value of each run (NaN when a run failed). */
export interface Figure {
  label: string;
  unit: string;
  runs: number[];
  error?: string;
}

/** A positive integer from environment variable `name`, else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name) ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** The median of the values that are not NaN (NaN when there are none). */
export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A value with one decimal, or `failed` for NaN. */
export function formatValue(value: number): string {
  return Number.isNaN(value) ? "failed" : value.toFixed(1);
}

/**
 * Runs `fn` `runs` times, logging each value under `who`; a failure is recorded in the figure
 * and stops it.
 */
export async function measure(
  figure: Figure,
  runs: number,
  who: string,
  fn: (run: number) => Promise<number>,
): Promise<Figure> {
  for (let run = 1; run <= runs; run++) {
    try {
      const value = await fn(run);
      figure.runs.push(value);
      console.log(`  ${who} ${figure.label} run ${run}: ${value.toFixed(1)} ${figure.unit}`);
    } catch (err) {
      figure.error = err instanceof Error ? err.message : String(err);
      console.log(`  ${who} ${figure.label} run ${run}: FAILED ${figure.error}`);
      break;
    }
  }
  return figure;
}

/**
 * Lines of a table: the first `leftColumns` columns left-aligned, the others right-aligned, a
 * dashed rule under the header.
 */
export function formatTable(header: string[], rows: string[][], leftColumns = 2): string[] {
  const widths = header.map((_, c) =>
    Math.max(...[header, ...rows].map((row) => (row[c] ?? "").length))
  );
  const line = (row: string[]) =>
    row.map((cell, c) => c < leftColumns ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))
      .join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}
