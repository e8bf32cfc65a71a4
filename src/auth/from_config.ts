/**
 * Builds the {@link Authenticator} the config asks for, loading the htpasswd file and the token
 * signing key (generated on first start when not configured).
 * @module
 */
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { ACTIONS, compilePolicy } from "./rules.ts";
import { Authenticator } from "./authenticator.ts";
import { Htpasswd } from "./htpasswd.ts";
import { TokenService } from "./tokens.ts";

/** The authenticator for `config`, whose data directory is `dataDir`. */
export async function createAuthenticator(config: Config, dataDir: string): Promise<Authenticator> {
  const auth = config.auth;
  if (!auth) {
    return new Authenticator({
      mode: "open",
      policy: compilePolicy({ rules: [], groups: {}, loopbackAnonymous: [...ACTIONS] }),
    });
  }
  const policy = compilePolicy({
    rules: auth.rules,
    groups: auth.groups,
    loopbackAnonymous: auth.loopbackAnonymous,
  });
  if (!auth.htpasswd) return new Authenticator({ mode: "open", policy });
  const htpasswd = new Htpasswd(auth.htpasswd);
  await htpasswd.load();
  if (!auth.token.enabled) return new Authenticator({ mode: "basic", policy, htpasswd });
  const tokens = await TokenService.load(auth.token.key ?? join(dataDir, "token-signing-key.pem"), {
    issuer: auth.token.issuer,
    service: auth.token.service,
    expiresIn: auth.token.expiresIn,
    generate: auth.token.key === undefined,
  });
  return new Authenticator({ mode: "token", policy, htpasswd, tokens });
}
