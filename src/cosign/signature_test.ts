import { Buffer } from "node:buffer";
import { generateKeyPairSync, sign } from "node:crypto";
import { assertEquals, assertOk } from "../../tests/assert.ts";
import { signPayload, verifyPayloadSignature } from "./signature.ts";

const payload = new TextEncoder().encode('{"critical":{}}');

Deno.test("signature: ECDSA signs DER; verify takes DER and P1363, rejects others", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = signPayload(privateKey, payload);
  assertEquals(Buffer.from(der, "base64")[0], 0x30);
  assertOk(verifyPayloadSignature(publicKey, payload, der));
  const p1363 = sign("sha256", payload, { key: privateKey, dsaEncoding: "ieee-p1363" });
  assertEquals(p1363.length, 64);
  assertOk(verifyPayloadSignature(publicKey, payload, p1363.toString("base64")));
  assertOk(!verifyPayloadSignature(publicKey, new TextEncoder().encode("other"), der));
  assertOk(!verifyPayloadSignature(publicKey, payload, "not base64!"));
  assertOk(!verifyPayloadSignature(publicKey, payload, ""));
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
  assertOk(!verifyPayloadSignature(other, payload, der));
});

Deno.test("signature: RSA (PKCS#1 v1.5 and PSS) and Ed25519 verify", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  assertOk(verifyPayloadSignature(rsa.publicKey, payload, signPayload(rsa.privateKey, payload)));
  const pss = sign("sha256", payload, { key: rsa.privateKey, padding: 6 /* PSS */ });
  assertOk(verifyPayloadSignature(rsa.publicKey, payload, pss.toString("base64")));
  const ed = generateKeyPairSync("ed25519");
  const sig = signPayload(ed.privateKey, payload);
  assertOk(verifyPayloadSignature(ed.publicKey, payload, sig));
  assertOk(!verifyPayloadSignature(ed.publicKey, new Uint8Array([1]), sig));
});
