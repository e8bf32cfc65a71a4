import { generateKeyPairSync } from "node:crypto";
import { assertEquals } from "../../tests/assert.ts";
import { buildPayload, checkClaims, parsePayload } from "./payload.ts";
import { signPayload } from "./signature.ts";
import { verifySimpleSigning } from "./verify.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

Deno.test("payload: bytes as cosign writes them; parse and claims", () => {
  const bytes = buildPayload({ dockerReference: "reg.example/app", manifestDigest: DIGEST });
  assertEquals(
    new TextDecoder().decode(bytes),
    `{"critical":{"identity":{"docker-reference":"reg.example/app"},"image":{` +
      `"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},` +
      `"optional":null}`,
  );
  const payload = parsePayload(bytes);
  assertEquals(checkClaims(payload, DIGEST), undefined);
  assertEquals(checkClaims(payload, `sha256:${"b".repeat(64)}`)?.startsWith("payload signs"), true);
  const annotated = parsePayload(
    buildPayload({ dockerReference: "r/a", manifestDigest: DIGEST, optional: { env: "prod" } }),
  );
  assertEquals(checkClaims(annotated, DIGEST, { env: "prod" }), undefined);
  assertEquals(typeof checkClaims(annotated, DIGEST, { env: "dev" }), "string");
});

Deno.test("verifySimpleSigning: ok, wrong key, wrong digest, bad payload, no signature", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const bytes = buildPayload({ dockerReference: "reg.example/app", manifestDigest: DIGEST });
  const sig = signPayload(privateKey, bytes);
  const ok = verifySimpleSigning(bytes, sig, publicKey, { imageDigest: DIGEST });
  assertEquals(ok.ok && ok.payload.critical.image["docker-manifest-digest"], DIGEST);
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
  assertEquals(verifySimpleSigning(bytes, sig, other), {
    ok: false,
    reason: "signature does not verify with the given key",
  });
  const wrongDigest = verifySimpleSigning(bytes, sig, publicKey, {
    imageDigest: `sha256:${"c".repeat(64)}`,
  });
  assertEquals(wrongDigest.ok, false);
  const junk = new TextEncoder().encode('{"critical":{"type":"atomic"}}');
  const junkResult = verifySimpleSigning(junk, signPayload(privateKey, junk), publicKey);
  assertEquals(junkResult.ok ? "" : junkResult.reason.includes("payload type"), true);
  assertEquals(verifySimpleSigning(bytes, undefined, publicKey).ok, false);
});
