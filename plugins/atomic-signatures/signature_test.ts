import { assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import type { Digest } from "../../src/plugins/api.ts";
import { BZIP2, DIGEST, FINGERPRINT, SIGNED, UNCOMPRESSED, ZLIB } from "./_fixtures.ts";
import { OpenPgpError, readSignedMessage } from "./openpgp.ts";
import {
  extensionSignature,
  isSignatureName,
  parseSignaturePut,
  SignatureError,
} from "./signature.ts";

const NAME = `${DIGEST}@${"0123456789abcdef".repeat(2)}`;
const put = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  type: "atomic",
  name: NAME,
  content: SIGNED,
  ...extra,
});

Deno.test("readSignedMessage: gpg messages uncompressed, ZIP and ZLIB", () => {
  const text = (b64: string) =>
    new TextDecoder().decode(readSignedMessage(Uint8Array.fromBase64(b64)).literal);
  assertEquals(text(UNCOMPRESSED), "hello none");
  assertEquals(text(ZLIB), "hello zlib");
  const signed = readSignedMessage(Uint8Array.fromBase64(SIGNED));
  assertEquals(signed.fingerprint, FINGERPRINT);
  assertEquals(signed.keyId, FINGERPRINT.slice(-16));
  assertEquals(typeof signed.created, "number");
});

Deno.test("readSignedMessage: unsupported or malformed input throws OpenPgpError", () => {
  const err = assertThrows(() => readSignedMessage(Uint8Array.fromBase64(BZIP2)), OpenPgpError);
  assertMatch(err.message, /compression algorithm 3/);
  assertThrows(() => readSignedMessage(new Uint8Array([0x41, 0x42])), OpenPgpError);
  assertThrows(() => readSignedMessage(new Uint8Array([0xcb, 0x20, 0x62])), OpenPgpError);
  const truncated = Uint8Array.fromBase64(UNCOMPRESSED).subarray(0, 20);
  assertThrows(() => readSignedMessage(truncated), OpenPgpError);
});

Deno.test("parseSignaturePut: a skopeo signature is accepted with its key and identity", () => {
  const accepted = parseSignaturePut(put(), DIGEST);
  assertEquals(accepted.name, NAME);
  assertEquals(accepted.bytes, Uint8Array.fromBase64(SIGNED));
  assertEquals(accepted.detail.fingerprint, FINGERPRINT);
  assertEquals(accepted.detail.keyId, "CAB425A8150BD056");
  assertEquals(accepted.detail.identity, "wharf.test/demo/app:1.0");
  assertEquals(extensionSignature(NAME, accepted.bytes), put());
});

Deno.test("parseSignaturePut: shape errors", () => {
  const cases: [unknown, RegExp][] = [
    [[put()], /one signature object/],
    [put({ schemaVersion: 1 }), /schemaVersion/],
    [put({ schemaVersion: "2" }), /schemaVersion/],
    [{ ...put(), schemaVersion: undefined, version: 2 }, /schemaVersion/],
    [put({ type: "sigstore" }), /type/],
    [put({ name: `${DIGEST}@abc` }), /name/],
    [put({ name: `sha256:${"f".repeat(64)}@${"0".repeat(32)}` }), /name/],
    [put({ name: `${DIGEST}@${"A".repeat(32)}` }), /name/],
    [put({ content: "" }), /base64/],
    [put({ content: "aGk" }), /base64/],
    [put({ content: "aG k=" }), /base64/],
    [put({ content: "-_8=" }), /base64/],
    [put({ content: btoa("not pgp") }), /not an OpenPGP message/],
  ];
  for (const [body, message] of cases) {
    const err = assertThrows(() => parseSignaturePut(body, DIGEST), SignatureError);
    assertMatch(err.message, message, JSON.stringify(body).slice(0, 80));
  }
});

Deno.test("parseSignaturePut: the payload must be an atomic signature of this digest", () => {
  const other = `sha256:${"1".repeat(64)}` as Digest;
  const err = assertThrows(
    () => parseSignaturePut(put({ name: `${other}@${"0".repeat(32)}` }), other),
    SignatureError,
  );
  assertMatch(err.message, /another manifest/);
  const notJson = assertThrows(
    () => parseSignaturePut(put({ content: UNCOMPRESSED }), DIGEST),
    SignatureError,
  );
  assertMatch(notJson.message, /not JSON/);
});

Deno.test("parseSignaturePut: messages beyond the reader are kept, unread", () => {
  const accepted = parseSignaturePut(put({ content: BZIP2 }), DIGEST);
  assertEquals(accepted.detail.payload, "unreadable");
});

Deno.test("isSignatureName", () => {
  assertEquals(isSignatureName(NAME, DIGEST), true);
  assertEquals(isSignatureName(`${NAME}0`, DIGEST), false);
  assertEquals(isSignatureName("0".repeat(32), DIGEST), false);
});
