import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { parseSbom, SbomError } from "./document.ts";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

Deno.test("parseSbom: SPDX 2.3 packages with purls, duplicates once", () => {
  const doc = parseSbom(json({
    spdxVersion: "SPDX-2.3",
    SPDXID: "SPDXRef-DOCUMENT",
    packages: [
      {
        name: "openssl",
        versionInfo: "3.0.13-1",
        externalRefs: [
          { referenceCategory: "SECURITY", referenceType: "cpe23Type", referenceLocator: "cpe:x" },
          {
            referenceCategory: "PACKAGE-MANAGER",
            referenceType: "purl",
            referenceLocator: "pkg:deb/debian/openssl@3.0.13-1",
          },
        ],
      },
      {
        name: "openssl",
        versionInfo: "3.0.13-1",
        externalRefs: [{
          referenceType: "purl",
          referenceLocator: "pkg:deb/debian/openssl@3.0.13-1",
        }],
      },
      { name: "busybox" },
    ],
  }));
  assertEquals(doc, {
    format: "spdx",
    specVersion: "SPDX-2.3",
    truncated: false,
    packages: [
      { name: "openssl", version: "3.0.13-1", purl: "pkg:deb/debian/openssl@3.0.13-1" },
      { name: "busybox", version: null, purl: null },
    ],
  });
});

Deno.test("parseSbom: SPDX 3.0 JSON-LD software packages", () => {
  const doc = parseSbom(json({
    "@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
    "@graph": [
      { type: "CreationInfo", "@id": "_:c" },
      {
        type: "software_Package",
        name: "zlib",
        software_packageVersion: "1.3",
        software_packageUrl: "pkg:generic/zlib@1.3",
      },
    ],
  }));
  assertEquals(doc.format, "spdx");
  assertEquals(doc.packages, [{ name: "zlib", version: "1.3", purl: "pkg:generic/zlib@1.3" }]);
});

Deno.test("parseSbom: CycloneDX nested components", () => {
  const doc = parseSbom(json({
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    metadata: { component: { name: "the-image", type: "container" } },
    components: [
      {
        type: "library",
        name: "express",
        version: "4.19.2",
        purl: "pkg:npm/express@4.19.2",
        components: [{ type: "library", name: "qs", version: "6.11.0" }],
      },
    ],
  }));
  assertEquals(doc.format, "cyclonedx");
  assertEquals(doc.specVersion, "1.5");
  assertEquals(doc.packages.map((p) => p.name).sort(), ["express", "qs"]);
});

Deno.test("parseSbom: Syft JSON artifacts", () => {
  const doc = parseSbom(json({
    schema: { version: "16.0.4", url: "https://raw.githubusercontent.com/anchore/syft/…" },
    artifacts: [{ name: "musl", version: "1.2.4-r2", purl: "pkg:apk/alpine/musl@1.2.4-r2" }],
  }));
  assertEquals(doc.format, "syft");
  assertEquals(doc.packages, [{
    name: "musl",
    version: "1.2.4-r2",
    purl: "pkg:apk/alpine/musl@1.2.4-r2",
  }]);
});

Deno.test("parseSbom: maxPackages truncates and says so", () => {
  const packages = Array.from({ length: 10 }, (_, i) => ({ name: `p${i}` }));
  const doc = parseSbom(json({ spdxVersion: "SPDX-2.3", packages }), { maxPackages: 3 });
  assertEquals(doc.packages.length, 3);
  assertEquals(doc.truncated, true);
});

Deno.test("parseSbom: deeply nested CycloneDX does not exhaust the stack", () => {
  let components: unknown[] = [{ name: "leaf" }];
  for (let i = 0; i < 5000; i++) components = [{ name: `c${i}`, components }];
  const doc = parseSbom(json({ bomFormat: "CycloneDX", components }));
  assertEquals(doc.packages.length, 5001);
});

Deno.test("parseSbom: malformed documents throw SbomError", () => {
  const bad: [string, Uint8Array][] = [
    ["not JSON", new TextEncoder().encode("SPDXVersion: SPDX-2.3\n")],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d])],
    ["array", json([1, 2])],
    ["unknown", json({ hello: "world" })],
    ["packages not a list", json({ spdxVersion: "SPDX-2.3", packages: {} })],
    ["package without name", json({ spdxVersion: "SPDX-2.3", packages: [{ versionInfo: "1" }] })],
    ["component not object", json({ bomFormat: "CycloneDX", components: ["x"] })],
    [
      "nested not list",
      json({ bomFormat: "CycloneDX", components: [{ name: "a", components: 1 }] }),
    ],
  ];
  for (const [label, bytes] of bad) {
    const err = assertThrows(() => parseSbom(bytes), SbomError);
    assertEquals(typeof err.message, "string", label);
  }
});

Deno.test("parseSbom: an SPDX document without packages is valid and empty", () => {
  assertEquals(parseSbom(json({ spdxVersion: "SPDX-2.2" })).packages, []);
});
