/**
 * SBOM media types for `.sbom` attachments (`cosign attach sbom --type … --input-format …`).
 * @module
 */

/** SBOM formats cosign attaches. */
export type SbomType = "spdx" | "cyclonedx" | "syft";
/** Encodings of an SBOM file. */
export type SbomInputFormat = "json" | "xml" | "text";

const MEDIA_TYPES: Record<string, string> = {
  "spdx/text": "text/spdx",
  "spdx/json": "text/spdx+json",
  "cyclonedx/xml": "application/vnd.cyclonedx+xml",
  "cyclonedx/json": "application/vnd.cyclonedx+json",
  "syft/json": "application/vnd.syft+json",
};

/**
 * The layer media type of an SBOM. Type and format are sniffed from the content when not given:
 * `spdxVersion` (JSON) or `SPDXVersion:` (tag-value) is SPDX, `bomFormat: "CycloneDX"` or
 * `<bom` is CycloneDX, `artifacts` + `descriptor` is syft.
 */
export function sbomMediaType(
  content: Uint8Array,
  type?: SbomType,
  inputFormat?: SbomInputFormat,
): string {
  const text = new TextDecoder().decode(content).trimStart();
  let json: Record<string, unknown> | undefined;
  if (text.startsWith("{")) {
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON after all
    }
  }
  const format = inputFormat ?? (json ? "json" : text.startsWith("<") ? "xml" : "text");
  const sniffed: SbomType | undefined = json
    ? (typeof json.spdxVersion === "string"
      ? "spdx"
      : json.bomFormat === "CycloneDX"
      ? "cyclonedx"
      : "artifacts" in json && "descriptor" in json
      ? "syft"
      : undefined)
    : /<bom[\s>]/.test(text)
    ? "cyclonedx"
    : /^SPDXVersion:/m.test(text)
    ? "spdx"
    : undefined;
  const kind = type ?? sniffed;
  if (!kind) {
    throw new Error("cannot tell the SBOM format: pass --type spdx|cyclonedx|syft");
  }
  const mediaType = MEDIA_TYPES[`${kind}/${format}`];
  if (!mediaType) throw new Error(`unsupported SBOM: --type ${kind} with --input-format ${format}`);
  return mediaType;
}
