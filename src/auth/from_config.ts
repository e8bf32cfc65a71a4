/**
 * Builds the {@link Authenticator} the config asks for, loading the htpasswd file and the token
 * signing key (generated on first start when not configured, and then shared by every process
 * through the coordination store: `<data>/token-signing-key.pem` on one node, a database row
 * on PostgreSQL).
 * @module
 */
import type { Coordination } from "../coordination/coordination.ts";
import type { Config } from "../config/schema.ts";
import { ACTIONS, compilePolicy } from "./rules.ts";
import { Authenticator } from "./authenticator.ts";
import { Htpasswd } from "./htpasswd.ts";
import { TokenService } from "./tokens.ts";

const SIGNING_KEY = "token-signing-key.pem";

/** The authenticator for `config`, sharing keys and login counts through `coordination`. */
export async function createAuthenticator(
  config: Config,
  coordination: Coordination,
): Promise<Authenticator> {
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
  const failures = coordination.failures;
  if (!auth.token.enabled) return new Authenticator({ mode: "basic", policy, htpasswd, failures });
  const options = {
    issuer: auth.token.issuer,
    service: auth.token.service,
    expiresIn: auth.token.expiresIn,
  };
  const tokens = auth.token.key
    ? await TokenService.load(auth.token.key, options)
    : await TokenService.fromPem(
      await coordination.sharedValue(SIGNING_KEY, TokenService.generateKey),
      options,
      `(generated, ${SIGNING_KEY})`,
    );
  return new Authenticator({ mode: "token", policy, htpasswd, tokens, failures });
}
