/**
 * The registry's own bearer tokens: short-lived EdDSA-signed JWTs in the Docker token format
 * (`access: [{type, name, actions}]`). The signing key is generated on first start and kept in
 * the data directory, or read from the config.
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { importPKCS8, importSPKI, jwtVerify, SignJWT } from "jose";
import type { ScopeEntry } from "./scope.ts";

/** The verified content of a token. */
export interface TokenClaims {
  /** The user, or null for an anonymous token. */
  subject: string | null;
  access: ScopeEntry[];
  expiresAt: number;
}

/** Options of {@link TokenService}. */
export interface TokenOptions {
  issuer: string;
  service: string;
  /** Lifetime in seconds (at least 60, as clients clamp to that). */
  expiresIn: number;
}

/** A token as answered by the token endpoint. */
export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

const CACHE_LIMIT = 10_000;

/** Issues and verifies tokens with one Ed25519 key. */
export class TokenService {
  #privateKey: CryptoKey;
  #publicKey: CryptoKey;
  #options: TokenOptions;
  #verified = new Map<string, TokenClaims>();

  private constructor(privateKey: CryptoKey, publicKey: CryptoKey, options: TokenOptions) {
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#options = options;
  }

  /** Loads the PKCS#8 PEM Ed25519 key at `keyPath` (an operator-provided file). */
  static async load(keyPath: string, options: TokenOptions): Promise<TokenService> {
    let pem: string;
    try {
      pem = await Deno.readTextFile(keyPath);
    } catch (err) {
      throw new Error(`cannot read token signing key ${keyPath}: ${(err as Error).message}`);
    }
    return await TokenService.fromPem(pem, options, keyPath);
  }

  /** A service signing with the PKCS#8 PEM Ed25519 key `pem` (`source` names it in errors). */
  static async fromPem(pem: string, options: TokenOptions, source: string): Promise<TokenService> {
    let spki: string;
    try {
      spki = createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "pem" })
        .toString();
    } catch {
      throw new Error(`token signing key ${source} is not a PEM private key`);
    }
    const privateKey = await importPKCS8(pem, "EdDSA").catch(() => {
      throw new Error(`token signing key ${source} must be an Ed25519 key (PKCS#8 PEM)`);
    });
    return new TokenService(privateKey, await importSPKI(spki, "EdDSA"), options);
  }

  /** A new Ed25519 signing key as PKCS#8 PEM. */
  static generateKey(): string {
    return generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
  }

  /** Signs a token granting `access` to `subject`. */
  async issue(subject: string | null, access: ScopeEntry[]): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
      .setIssuer(this.#options.issuer)
      .setAudience(this.#options.service)
      .setSubject(subject ?? "")
      .setIssuedAt(now)
      .setNotBefore(now - 10)
      .setExpirationTime(now + this.#options.expiresIn)
      .setJti(crypto.randomUUID())
      .sign(this.#privateKey);
    return {
      token,
      expiresIn: this.#options.expiresIn,
      issuedAt: new Date(now * 1000).toISOString(),
    };
  }

  /** The claims of a valid token of ours, or null (bad signature, expired, wrong audience). */
  async verify(token: string): Promise<TokenClaims | null> {
    const cached = this.#verified.get(token);
    if (cached) {
      if (cached.expiresAt > Date.now()) return cached;
      this.#verified.delete(token);
      return null;
    }
    try {
      const { payload } = await jwtVerify(token, this.#publicKey, {
        issuer: this.#options.issuer,
        audience: this.#options.service,
        algorithms: ["EdDSA"],
      });
      const claims: TokenClaims = {
        subject: payload.sub ? payload.sub : null,
        access: Array.isArray(payload.access) ? payload.access as ScopeEntry[] : [],
        expiresAt: (payload.exp ?? 0) * 1000,
      };
      if (this.#verified.size >= CACHE_LIMIT) this.#verified.clear();
      this.#verified.set(token, claims);
      return claims;
    } catch {
      return null;
    }
  }
}
