/**
 * Reading SBOM documents: SPDX JSON (2.x and 3.0 JSON-LD), CycloneDX JSON and Syft JSON, reduced
 * to the packages they list (name, version, purl). Pure: no I/O, no registry types.
 * @module
 */

/** The SBOM formats the plugin knows. */
export type SbomFormat = "spdx" | "cyclonedx" | "syft";

/** One package an SBOM lists. */
export interface SbomPackage {
  name: string;
  version: string | null;
  purl: string | null;
}

/** What the plugin keeps of a parsed SBOM. */
export interface SbomDocument {
  format: SbomFormat;
  /** `spdxVersion`, CycloneDX `specVersion` or Syft schema version, when the document says. */
  specVersion: string | null;
  /** Distinct packages, at most `maxPackages`. */
  packages: SbomPackage[];
  /** True when the document listed more than `maxPackages` packages. */
  truncated: boolean;
}

/** A document that is not a readable SBOM; the message says why. */
export class SbomError extends Error {
  override name = "SbomError";
}

/** Limits of {@link parseSbom}. */
export interface ParseOptions {
  /** Packages kept at most (default 100 000); the rest is dropped and `truncated` is set. */
  maxPackages?: number;
}

/** Longest name, version or purl kept; longer values are cut (they are display and search keys). */
const MAX_FIELD = 1024;

/**
 * Parses SBOM bytes as JSON and lists their packages. The format is told by the content
 * (`spdxVersion`, `@context` of SPDX 3, `bomFormat: "CycloneDX"`, Syft's `artifacts`), not by
 * the media type, which clients often get wrong. Throws {@link SbomError} for anything else.
 *
 * @example
 * ```ts
 * const doc = parseSbom(bytes);
 * doc.format; // "spdx"
 * doc.packages[0]; // { name: "openssl", version: "3.0.13", purl: "pkg:deb/debian/openssl@3.0.13" }
 * ```
 */
export function parseSbom(bytes: Uint8Array, options: ParseOptions = {}): SbomDocument {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new SbomError(`not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isObject(body)) throw new SbomError("not a JSON object");
  const collector = new Collector(options.maxPackages ?? 100_000);
  if (typeof body.spdxVersion === "string") {
    readSpdx2(body, collector);
    return collector.document("spdx", body.spdxVersion);
  }
  if (Array.isArray(body["@graph"]) && isSpdx3Context(body["@context"])) {
    readSpdx3(body["@graph"], collector);
    return collector.document("spdx", "3");
  }
  if (body.bomFormat === "CycloneDX") {
    readCycloneDx(body, collector);
    return collector.document("cyclonedx", stringOrNull(body.specVersion));
  }
  if (Array.isArray(body.artifacts) && isObject(body.schema)) {
    readSyft(body.artifacts, collector);
    return collector.document("syft", stringOrNull(body.schema.version));
  }
  throw new SbomError("neither SPDX, CycloneDX nor Syft JSON");
}

function readSpdx2(body: Record<string, unknown>, out: Collector): void {
  if (body.packages === undefined) return;
  if (!Array.isArray(body.packages)) throw new SbomError("SPDX packages must be a list");
  for (const item of body.packages) {
    if (!isObject(item)) throw new SbomError("SPDX package must be an object");
    if (typeof item.name !== "string") throw new SbomError("SPDX package without a name");
    let purl: string | null = null;
    if (Array.isArray(item.externalRefs)) {
      const ref = item.externalRefs.find((r) => isObject(r) && r.referenceType === "purl");
      purl = stringOrNull((ref as Record<string, unknown> | undefined)?.referenceLocator);
    }
    out.add(item.name, stringOrNull(item.versionInfo), purl);
  }
}

function isSpdx3Context(context: unknown): boolean {
  const values = Array.isArray(context) ? context : [context];
  return values.some((v) => typeof v === "string" && v.startsWith("https://spdx.org/rdf/3."));
}

function readSpdx3(graph: unknown[], out: Collector): void {
  for (const element of graph) {
    if (!isObject(element)) throw new SbomError("SPDX 3 graph element must be an object");
    if (element.type !== "software_Package") continue;
    if (typeof element.name !== "string") throw new SbomError("SPDX 3 package without a name");
    out.add(
      element.name,
      stringOrNull(element.software_packageVersion),
      stringOrNull(element.software_packageUrl),
    );
  }
}

function readCycloneDx(body: Record<string, unknown>, out: Collector): void {
  if (body.components === undefined) return;
  // Components nest; walk them with a stack so that deep documents cannot exhaust the call stack.
  const pending: unknown[] = [body.components];
  while (pending.length > 0) {
    const list = pending.pop();
    if (!Array.isArray(list)) throw new SbomError("CycloneDX components must be a list");
    for (const item of list) {
      if (!isObject(item)) throw new SbomError("CycloneDX component must be an object");
      if (typeof item.name !== "string") throw new SbomError("CycloneDX component without a name");
      out.add(item.name, stringOrNull(item.version), stringOrNull(item.purl));
      if (item.components !== undefined) pending.push(item.components);
    }
  }
}

function readSyft(artifacts: unknown[], out: Collector): void {
  for (const item of artifacts) {
    if (!isObject(item)) throw new SbomError("Syft artifact must be an object");
    if (typeof item.name !== "string") throw new SbomError("Syft artifact without a name");
    out.add(item.name, stringOrNull(item.version), stringOrNull(item.purl));
  }
}

/** Gathers distinct packages up to a limit. */
class Collector {
  readonly #seen = new Set<string>();
  readonly #packages: SbomPackage[] = [];
  #truncated = false;

  constructor(readonly max: number) {}

  add(name: string, version: string | null, purl: string | null): void {
    const pkg = { name: cut(name), version: cut(version), purl: cut(purl) };
    if (pkg.name === "") return;
    const key = JSON.stringify([pkg.name, pkg.version, pkg.purl]);
    if (this.#seen.has(key)) return;
    if (this.#packages.length >= this.max) {
      this.#truncated = true;
      return;
    }
    this.#seen.add(key);
    this.#packages.push(pkg);
  }

  document(format: SbomFormat, specVersion: string | null): SbomDocument {
    return { format, specVersion, packages: this.#packages, truncated: this.#truncated };
  }
}

function cut<T extends string | null>(value: T): T {
  return (value !== null && value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value) as T;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
