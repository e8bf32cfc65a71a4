import { assertEquals, assertMatch, assertOk, assertThrows } from "../../tests/assert.ts";
import { createPublicKey, sign, verify } from "node:crypto";
import {
  COSIGN_PRIVATE_KEY_PEM_TYPE,
  CosignKeyError,
  decodePem,
  decryptPrivateKey,
  decryptPrivateKeyDer,
  encryptPrivateKey,
  generateKeyPair,
  parsePublicKey,
  SIGSTORE_PRIVATE_KEY_PEM_TYPE,
} from "./keys.ts";

// Known-answer vectors: keys encrypted by cosign itself, from sigstore/cosign
// pkg/cosign/keys_test.go at commit 11671a73744069f05c3f706700b35be1162080ee (Apache-2.0),
// constants `pemcosignkey`, `pemcosigneckey` and `pemsigstorekey`; passphrase "hello".
const COSIGN_PEM_N32768 = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----`;

const COSIGN_PEM_N65536_SEC1 = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----`;

const SIGSTORE_PEM_N32768 = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----`;

Deno.test("keys: known answer — cosign-encrypted keys decrypt with their passphrase", () => {
  for (const pem of [COSIGN_PEM_N32768, SIGSTORE_PEM_N32768]) {
    const key = decryptPrivateKey(pem, "hello");
    assertEquals(key.asymmetricKeyType, "ec");
    assertEquals(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
    // The decrypted key signs, and its public half verifies.
    const signature = sign("sha256", new Uint8Array([1, 2, 3]), key);
    assertOk(verify("sha256", new Uint8Array([1, 2, 3]), createPublicKey(key), signature));
  }
  // cosign's own test marks this one unreadable as PKCS#8: its plaintext is SEC1, taken here.
  const der = decryptPrivateKeyDer(COSIGN_PEM_N65536_SEC1, "hello");
  assertEquals(der[0], 0x30);
  assertEquals(decryptPrivateKey(COSIGN_PEM_N65536_SEC1, "hello").asymmetricKeyType, "ec");
});

Deno.test("keys: wrong passphrase is one clear error", () => {
  const err = assertThrows(() => decryptPrivateKey(SIGSTORE_PEM_N32768, "wrong"), CosignKeyError);
  assertEquals(err.message, "wrong passphrase for the private key (decryption failed)");
});

Deno.test("keys: generate, write, read back; both PEM types; N=32768 by default", () => {
  const pair = generateKeyPair("pw");
  assertMatch(pair.privateKeyPem, /^-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n/);
  assertMatch(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  const body = decodePem(pair.privateKeyPem, [COSIGN_PRIVATE_KEY_PEM_TYPE]).bytes;
  const json = JSON.parse(new TextDecoder().decode(body));
  assertEquals(Object.keys(json), ["kdf", "cipher", "ciphertext"]);
  assertEquals(json.kdf.params, { N: 32768, r: 8, p: 1 });
  assertEquals(atob(json.kdf.salt).length, 32);
  assertEquals(atob(json.cipher.nonce).length, 24);
  for (const line of pair.privateKeyPem.split("\n")) assertOk(line.length <= 64);

  const key = decryptPrivateKey(pair.privateKeyPem, "pw");
  const pub = parsePublicKey(pair.publicKeyPem);
  const signature = sign("sha256", new Uint8Array([9]), key);
  assertOk(verify("sha256", new Uint8Array([9]), pub, signature));

  const der = decryptPrivateKeyDer(pair.privateKeyPem, "pw");
  const sigstore = encryptPrivateKey(der, "", {
    pemType: SIGSTORE_PRIVATE_KEY_PEM_TYPE,
    scryptN: 65536,
  });
  assertMatch(sigstore, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  assertEquals(decryptPrivateKeyDer(sigstore, ""), der);
});

Deno.test("keys: malformed input is rejected with a reason", () => {
  assertThrows(() => decryptPrivateKey("not a key", "x"), CosignKeyError);
  const err = assertThrows(
    () => decryptPrivateKey("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "x"),
    CosignKeyError,
  );
  assertMatch(err.message, /unsupported PEM type "PRIVATE KEY"/);
  // Tampered scrypt parameters are refused before any work is done.
  const json = {
    kdf: { name: "scrypt", params: { N: 1 << 30, r: 8, p: 1 }, salt: "AAAA" },
    cipher: { name: "nacl/secretbox", nonce: "AAAA" },
    ciphertext: "AAAA",
  };
  const pem = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n${
    btoa(JSON.stringify(json))
  }\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n`;
  assertMatch(assertThrows(() => decryptPrivateKey(pem, "x"), CosignKeyError).message, /scrypt/);
});

Deno.test("keys: Ed25519 and RSA public keys are read for verification", () => {
  const ed = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----`;
  assertEquals(parsePublicKey(ed).asymmetricKeyType, "ed25519");
  // The RSA public key of sigstore/cosign pkg/cosign/keys_test.go `invalidrsawithpubkey`.
  const rsa = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx5piWVlE62NnZ0UzJ8Z6
oKiKOC4dbOZ1HsNhIRtqkM+Oq4G+25yq6P+0JU/Qvr9veOGEb3R/J9u8JBo+hv2i
5X8OtgvP2V2pi6f1s6vK7L0+6uRb4YTT/UdMshaVf97MgEqbq41Jf/cuvh+3AV0t
Z1BpixZg4aXMKpY6HUP69lbsu27oSUN1myMv7TSgZiV4CYs3l/gkEfpysBptWlcH
Ruw5RsB+C0RbjRtbJ/5VxmE/vd3Mlafd5t1WSpMb8yf0a84u5NFaXwZ7CweMfXeO
ddS0yb19ShSuW3PPRadruBM1mq15js9GfagPxDS75Imcs+fA62lWvHxEujTGjYHx
awIDAQAB
-----END PUBLIC KEY-----`;
  assertEquals(parsePublicKey(rsa).asymmetricKeyType, "rsa");
});
