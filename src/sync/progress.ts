/**
 * The progress line of `wharf sync run` on stderr: a redrawn bar on a terminal, plain lines
 * (at most one every 2 s) otherwise.
 * @module
 */
import type { Progress } from "./engine.ts";

/** Formats bytes as `12.3 MB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** One line of text for a progress state. */
export function progressLine(p: Progress, now = Date.now(), width = 24): string {
  const seconds = Math.max((now - p.startedAt) / 1000, 0.001);
  const rate = `${formatBytes(p.bytes / seconds)}/s`;
  const share = p.total > 0 ? Math.min(p.done / p.total, 1) : 0;
  const filled = Math.round(share * width);
  const bar = width > 0 ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
  return `${p.mirror} ${bar}${p.done}/${p.total} images  ${formatBytes(p.bytes)}  ${rate}` +
    (p.repository ? `  ${p.repository}` : "");
}

/** A progress renderer writing to stderr; call `done()` at the end. */
export function progressRenderer(
  options: { tty?: boolean; write?: (text: string) => void } = {},
): { update(p: Progress): void; done(): void } {
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  const write = options.write ?? ((text: string) => Deno.stderr.writeSync(encoder.encode(text)));
  let last = 0;
  let latest: Progress | undefined;
  let drawn = false;
  return {
    update(p) {
      latest = p;
      const now = Date.now();
      if (now - last < (tty ? 100 : 2000)) return;
      last = now;
      if (tty) {
        const columns = (() => {
          try {
            return Deno.consoleSize().columns;
          } catch {
            return 100;
          }
        })();
        write(`\r\x1b[K${progressLine(p, now).slice(0, columns - 1)}`);
        drawn = true;
      } else {
        write(`${progressLine(p, now, 0)}\n`);
      }
    },
    done() {
      if (tty && drawn) write("\r\x1b[K");
      else if (!tty && latest && latest.done > 0) write(`${progressLine(latest, Date.now(), 0)}\n`);
    },
  };
}
