/**
 * cosign key files: the encrypted private key (a PEM block whose body is the JSON of
 * go-securesystemslib's `encrypted.Encrypt`: scrypt key derivation + NaCl secretbox) and the PEM
 * public key. Keys generated here are ECDSA P-256, as `cosign generate-key-pair` makes them;
 * public keys may also be Ed25519 or RSA for verification.
 *
 * The default written form is the one every reader accepts: PEM type
 * `ENCRYPTED COSIGN PRIVATE KEY` and scrypt N=32768, r=8, p=1 (cosign reads both PEM types and
 * N ∈ {32768, 65536, 131072}; skopeo ≤ 1.11 / podman 4.3 read only the `COSIGN` type and N=32768).
 * @module
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scryptSync,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { xsalsa20poly1305 } from "@noble/ciphers/salsa.js";

/** PEM type cosign < 2.0.1, skopeo and podman write and read. */
export const COSIGN_PRIVATE_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY";
/** PEM type cosign ≥ 2.0.1 writes; c/image ≥ 5.25 (skopeo ≥ 1.12) reads it too. */
export const SIGSTORE_PRIVATE_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY";

/** scrypt work factors readers accept (r=8, p=1 always); 32768 is the only one old readers take. */
export const SCRYPT_N_VALUES = [32768, 65536, 131072] as const;

/** A key file that cannot be read: malformed, unsupported, or a wrong passphrase. */
export class CosignKeyError extends Error {
  override name = "CosignKeyError";
}

/** The JSON inside an encrypted private key PEM block. */
export interface EncryptedKeyJson {
  kdf: { name: "scrypt"; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: "nacl/secretbox"; nonce: string };
  ciphertext: string;
}

/** Options of {@link encryptPrivateKey}. */
export interface EncryptOptions {
  /** PEM label; default {@link COSIGN_PRIVATE_KEY_PEM_TYPE} (read by cosign, skopeo and podman). */
  pemType?: typeof COSIGN_PRIVATE_KEY_PEM_TYPE | typeof SIGSTORE_PRIVATE_KEY_PEM_TYPE;
  /** scrypt N; default 32768 (the only value skopeo 1.9 accepts). */
  scryptN?: (typeof SCRYPT_N_VALUES)[number];
}

/** A freshly generated key pair as PEM text. */
export interface GeneratedKeyPair {
  /** `cosign.key` content. */
  privateKeyPem: string;
  /** `cosign.pub` content. */
  publicKeyPem: string;
}

const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_SIZE = 32;
const SALT_SIZE = 32;
const NONCE_SIZE = 24;

/**
 * Generates an ECDSA P-256 key pair and returns it encrypted with `password`.
 *
 * @example
 * ```ts
 * const { privateKeyPem, publicKeyPem } = generateKeyPair("s3cret");
 * ```
 */
export function generateKeyPair(password: string, options: EncryptOptions = {}): GeneratedKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  return {
    privateKeyPem: encryptPrivateKey(pkcs8, password, options),
    publicKeyPem: publicKeyToPem(publicKey),
  };
}

/** Encrypts PKCS#8 DER bytes the way cosign does and returns the PEM text. */
export function encryptPrivateKey(
  pkcs8: Uint8Array,
  password: string,
  options: EncryptOptions = {},
): string {
  const n = options.scryptN ?? 32768;
  const salt = new Uint8Array(randomBytes(SALT_SIZE));
  const nonce = new Uint8Array(randomBytes(NONCE_SIZE));
  const key = deriveKey(password, salt, n);
  const ciphertext = xsalsa20poly1305(key, nonce).encrypt(pkcs8);
  // Field order as Go's encoding/json writes go-securesystemslib's structs.
  const json: EncryptedKeyJson = {
    kdf: { name: "scrypt", params: { N: n, r: SCRYPT_R, p: SCRYPT_P }, salt: base64(salt) },
    cipher: { name: "nacl/secretbox", nonce: base64(nonce) },
    ciphertext: base64(ciphertext),
  };
  return encodePem(
    options.pemType ?? COSIGN_PRIVATE_KEY_PEM_TYPE,
    new TextEncoder().encode(JSON.stringify(json)),
  );
}

/**
 * Decrypts an encrypted cosign private key (either PEM type) and returns its plaintext DER
 * (PKCS#8 as cosign writes it). Throws {@link CosignKeyError}; a wrong passphrase gives
 * "wrong passphrase for the private key".
 */
export function decryptPrivateKeyDer(pem: string, password: string): Uint8Array {
  const block = decodePem(pem, [COSIGN_PRIVATE_KEY_PEM_TYPE, SIGSTORE_PRIVATE_KEY_PEM_TYPE]);
  let json: EncryptedKeyJson;
  try {
    json = JSON.parse(new TextDecoder().decode(block.bytes));
  } catch {
    throw new CosignKeyError("private key: the PEM body is not the encrypted-key JSON");
  }
  if (json?.kdf?.name !== "scrypt" || json?.cipher?.name !== "nacl/secretbox") {
    throw new CosignKeyError(
      `private key: unsupported encryption (kdf "${json?.kdf?.name}", cipher "${json?.cipher?.name}")`,
    );
  }
  const { N, r, p } = json.kdf.params ?? {};
  // Bounded like go-securesystemslib's CheckParams, so a crafted file cannot exhaust memory.
  if (!(SCRYPT_N_VALUES as readonly number[]).includes(N) || r !== SCRYPT_R || p !== SCRYPT_P) {
    throw new CosignKeyError(`private key: unexpected scrypt parameters N=${N} r=${r} p=${p}`);
  }
  const salt = unbase64(json.kdf.salt, "salt");
  const nonce = unbase64(json.cipher.nonce, "nonce");
  const ciphertext = unbase64(json.ciphertext, "ciphertext");
  if (nonce.length !== NONCE_SIZE) throw new CosignKeyError("private key: nonce is not 24 bytes");
  if (ciphertext.length < 16) throw new CosignKeyError("private key: ciphertext too short");
  try {
    return xsalsa20poly1305(deriveKey(password, salt, N), nonce).decrypt(ciphertext);
  } catch {
    throw new CosignKeyError("wrong passphrase for the private key (decryption failed)");
  }
}

/**
 * Decrypts a cosign private key and returns it as a `KeyObject`. The plaintext is PKCS#8 as
 * cosign writes it; SEC1 (`EC PRIVATE KEY`) and PKCS#1 (`RSA PRIVATE KEY`) DER are also taken.
 */
export function decryptPrivateKey(pem: string, password: string): KeyObject {
  const der = decryptPrivateKeyDer(pem, password);
  for (const type of ["pkcs8", "sec1", "pkcs1"] as const) {
    try {
      return createPrivateKey({ key: Buffer.from(der), format: "der", type });
    } catch {
      // try the next encoding
    }
  }
  throw new CosignKeyError("private key: the decrypted bytes are not a PKCS#8/SEC1/PKCS#1 key");
}

/**
 * Reads a public key: PEM `PUBLIC KEY` (PKIX, as cosign writes), `RSA PUBLIC KEY` (PKCS#1), or
 * the public key of a `CERTIFICATE`. ECDSA, Ed25519 and RSA keys are accepted.
 */
export function parsePublicKey(pem: string): KeyObject {
  const block = decodePem(pem, ["PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"]);
  let key: KeyObject;
  try {
    if (block.type === "CERTIFICATE") {
      key = createPublicKey(pem.slice(pem.indexOf("-----BEGIN CERTIFICATE-----")));
    } else {
      key = createPublicKey({
        key: Buffer.from(block.bytes),
        format: "der",
        type: block.type === "PUBLIC KEY" ? "spki" : "pkcs1",
      });
    }
  } catch (err) {
    throw new CosignKeyError(`public key: cannot parse ${block.type}: ${(err as Error).message}`);
  }
  if (!["ec", "ed25519", "rsa"].includes(key.asymmetricKeyType ?? "")) {
    throw new CosignKeyError(`public key: unsupported key type "${key.asymmetricKeyType}"`);
  }
  return key;
}

/** PEM `PUBLIC KEY` (PKIX DER) of a key, as `cosign.pub` holds it. */
export function publicKeyToPem(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return encodePem("PUBLIC KEY", new Uint8Array(publicKey.export({ format: "der", type: "spki" })));
}

function deriveKey(password: string, salt: Uint8Array, n: number): Uint8Array {
  const maxmem = 128 * n * SCRYPT_R * 2;
  return new Uint8Array(
    scryptSync(password, salt, KEY_SIZE, { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem }),
  );
}

/** PEM text with 64-character lines, as Go's `pem.Encode` writes it. */
export function encodePem(type: string, bytes: Uint8Array): string {
  const body = base64(bytes).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${body.join("\n")}\n-----END ${type}-----\n`;
}

/** The first PEM block of `text` whose type is one of `types`. */
export function decodePem(text: string, types: string[]): { type: string; bytes: Uint8Array } {
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  const seen: string[] = [];
  for (const match of text.matchAll(pattern)) {
    if (!types.includes(match[1])) {
      seen.push(match[1]);
      continue;
    }
    const lines = match[2].split(/\r?\n/).filter((line) => line.trim() !== "");
    if (lines.some((line) => line.includes(":"))) {
      throw new CosignKeyError(`${match[1]}: PEM headers are not supported`);
    }
    return { type: match[1], bytes: unbase64(lines.join(""), match[1]) };
  }
  throw new CosignKeyError(
    seen.length
      ? `unsupported PEM type "${seen[0]}" (expected ${types.join(" or ")})`
      : `no PEM block found (expected ${types.join(" or ")})`,
  );
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function unbase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text.trim())) {
    throw new CosignKeyError(`${what}: not valid base64`);
  }
  return new Uint8Array(Buffer.from(text.trim(), "base64"));
}
