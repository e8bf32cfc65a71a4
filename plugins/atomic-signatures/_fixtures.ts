/**
 * Test fixtures: a manifest and a real atomic signature of it, made once with
 * `skopeo standalone-sign` (skopeo 1.9.3, GnuPG 2.2, Ed25519 key `FINGERPRINT`) so that unit
 * and HTTP tests need neither gpg nor skopeo.
 * @module
 */
import type { Digest } from "../../src/plugins/api.ts";

/** The empty JSON config blob the manifest refers to. */
export const CONFIG = new TextEncoder().encode("{}");

/** An OCI manifest (config `{}`, no layers), byte for byte as signed. */
export const MANIFEST = new TextEncoder().encode(
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}',
);

/** The digest of {@link MANIFEST}. */
export const DIGEST =
  "sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268" as Digest;

/** Fingerprint of the signing key. */
export const FINGERPRINT = "6FB7615EB789722C0C5D717DCAB425A8150BD056";

/** Base64 of the signature of {@link MANIFEST}, identity `wharf.test/demo/app:1.0` (ZIP-compressed). */
export const SIGNED =
  "owFNkNsrRFEUxs+4ZNxKYVJDsUtSjLP3nHuNV/Hulkvts8/eY8e52LMlad5NIU8evSi5lBKleRDPpHiRP0EpfwLOSeJprVbfb61vfXuttUo6c3/Vf9zZ/DSVerhbcJXlhobxTUAEl5zgFeBsAu7RQHK5kfReSJapGBaUUUEDQoED1pewYDlJS3LEo344gqPIgTkVlIcA93GR/sN8HHAWC4c9XoxLDJeWMNINhyGVaHloQM/MW5qlqRZlSDOZSokJIXShzahuMUZdohKXYKx6iFiuhzXbMJFhJcfkRpTYwTL0OeklYSAxD6joLfFigOWaoIkojCQPg5+/iKCxWPwxeg7lcxDEq7gf28N+BBxo2rqBkInscnlrrU7JpJWeTF9deI0XrytiqGVhtfybX31Nkp3S1Nj2Oxk8Syn7r9VRPTuRGqj2bT8fZSvNjacdJzc3j/0l+/ztqzClfA6+PBbm5zo+3mculK6Dr5nJy/RY9/vT4c7VbPv07W7LNw==";

/** `gpg --sign --compress-algo none|zlib|bzip2` of `hello none`, `hello zlib`, `bz`. */
export const UNCOMPRESSED =
  "kA0DAAgWyrQlqBUL0FYByxBiAGsHByVoZWxsbyBub25liHUEABYIAB0WIQRvt2Fet4lyLAxdcX3KtCWoFQvQVgUCawcHJQAKCRDKtCWoFQvQVg4OAP9kFa+00r4PCRwr6prs/yJrKSDVREFPwqLFO9JxLfOVegD/Wd+Cqfq8p5+N6bYJQb8swxfIhQ+PJsN3xhREUj+ZrQw=";
/** See {@link UNCOMPRESSED}. */
export const ZLIB =
  "owJ4nJvAy8zAIXZqi+oKUe4LYYynBZIYstnZVTNSc3LyFapyMpM6SlkYxDgYZMUUWfK3J8Zt7yzS4YktrIXpYGUCKWfg4hSAiTwpYGS47lv+teLmToFP6hf/rlHN4WGarzK1eMt6l5k+WdXth4weMvwv/iHJYZUTIbOZ2XZLuuO/8j9mR//13WU7eKpo0eNYmWQWAFd3OoY=";
/** See {@link UNCOMPRESSED}. */
export const BZIP2 =
  "owNCWmg2MUFZJlNZawz4rAAAM/////5HAyIGmMAE1AE3cP76FoRhTACCSCSAANhgBLSICkMgAHQ71BoAAAAABoGgZGhkADQep+ojyahSEDQNNHqDQ9QGgGgMgMgA0aNGCaAKkvS/Vx+CxNdrxBGZ6Y30HEAQJ4vEwkYaTtrghQQ6BLrDJVM1mg3LCV54E+qBPFIMyQCMir6R2k+T0VkiU02pgOdcQQAFFBlYPjpy2y9FeII4ZBMDKyGcnvl+7jEBCLlZMY+yUxnH8XckU4UJBrDPisA=";
