/**
 * Manifest GET load for the benchmarks: wrk when installed (optionally spread over several
 * servers by a Lua script), else a loop of concurrent Deno fetches. Each returns requests/s.
 * @module
 */
import { join } from "node:path";

/** The media type the manifest GETs accept. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** The wrk binary (`WRK` overrides it). */
const WRK = Deno.env.get("WRK") ?? "wrk";

/** How many connections and wrk threads, for how long. */
export interface LoadOptions {
  seconds: number;
  connections: number;
  /** wrk threads (default 2); each owns `connections / threads` connections. */
  threads?: number;
  /** A wrk Lua script, e.g. from {@link writeSpreadScript}. */
  script?: string;
}

/** Whether the wrk binary runs here. */
export function wrkAvailable(): boolean {
  try {
    return new Deno.Command(WRK, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

/** Requests/s from `wrk -tT -cN -dS`; any non-2xx answer or socket error fails the run. */
export async function wrkRun(url: string, options: LoadOptions): Promise<number> {
  const args = [
    `-t${options.threads ?? 2}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    "-H",
    `Accept: ${OCI_MANIFEST}`,
  ];
  if (options.script) args.push("-s", options.script);
  const out = await new Deno.Command(WRK, {
    args: [...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const rate = text.match(/Requests\/sec:\s+([\d.]+)/);
  if (!out.success || !rate) throw new Error(`wrk failed:\n${text}`);
  const bad = text.match(/Non-2xx or 3xx responses: (\d+)|Socket errors:[^\n]*/);
  if (bad) throw new Error(`wrk saw errors (${bad[0]}):\n${text}`);
  return Number(rate[1]);
}

/**
 * Writes a wrk script to `dir` that points wrk's thread i at `urls[i % urls.length]` (wrk
 * connects each thread to one address, so run it with a multiple of `urls.length` threads).
 * The URLs must differ only in host and port.
 */
export async function writeSpreadScript(dir: string, urls: string[]): Promise<string> {
  const targets = urls.map((url) => {
    const { hostname, port } = new URL(url);
    return `{"${hostname}", "${port}"}`;
  });
  const path = join(dir, `spread-${urls.length}.lua`);
  await Deno.writeTextFile(
    path,
    `local targets = {${targets.join(", ")}}
local next = 0
function setup(thread)
  local target = targets[next % #targets + 1]
  next = next + 1
  thread.addr = wrk.lookup(target[1], target[2])[1]
end
`,
  );
  return path;
}

/**
 * Requests/s from `connections` concurrent fetch loops for `seconds` (when wrk is missing);
 * loop i GETs `urls[i % urls.length]`.
 */
export async function fetchLoopRun(urls: string[], options: LoadOptions): Promise<number> {
  const deadline = performance.now() + options.seconds * 1000;
  let count = 0;
  const worker = async (url: string) => {
    while (performance.now() < deadline) {
      const res = await fetch(url, { headers: { accept: OCI_MANIFEST } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET manifest: ${res.status}`);
      count++;
    }
  };
  const start = performance.now();
  await Promise.all(
    Array.from({ length: options.connections }, (_, i) => worker(urls[i % urls.length])),
  );
  return count / ((performance.now() - start) / 1000);
}
