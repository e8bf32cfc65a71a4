/**
 * Authentication with real clients: `skopeo` and `podman` (Debian packages) log in, push, pull
 * and delete against a Wharf configured with an htpasswd file (one entry made by Debian's
 * `htpasswd -nbB`), access rules, and either the Docker token flow or Basic challenges. Plus raw
 * HTTP checks of the token endpoint and of bad tokens (expired, tampered, signed by another key).
 *
 * Users: `alice` may do everything everywhere; `bob` (group `devs`) may only pull `team/**`;
 * anonymous callers may only pull `public/**`. Tests whose client is missing are skipped with the
 * reason.
 * @module
 */
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { startRegistry, type TestRegistry } from "./harness.ts";
import { initLayout, type LayoutImage, readTag, tagLayout, writeImage } from "./oci_layout.ts";
import { TokenService } from "../src/auth/tokens.ts";

const SKOPEO = Deno.env.get("SKOPEO") ?? "skopeo";
const PODMAN = Deno.env.get("PODMAN") ?? "podman";
const HTPASSWD = Deno.env.get("HTPASSWD") ?? "htpasswd";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

const ALICE = { user: "alice", password: "alice-Secret-1" };
const BOB = { user: "bob", password: "bob-Secret-2" };

function works(bin: string, args: string[]): boolean {
  try {
    return new Deno.Command(bin, { args, stdin: "null", stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const hasSkopeo = works(SKOPEO, ["--version"]);
const hasPodman = works(PODMAN, ["--version"]);
const hasHtpasswd = works(HTPASSWD, ["-nbB", "probe", "probe"]);
if (!hasSkopeo) {
  console.warn(
    `auth_interop_test: skopeo cases skipped — "${SKOPEO}" was not found or failed to run ` +
      "(install the Debian package skopeo, or set SKOPEO)",
  );
}
if (!hasPodman) {
  console.warn(
    `auth_interop_test: podman cases skipped — "${PODMAN}" was not found or failed to run ` +
      "(install the Debian package podman, or set PODMAN)",
  );
}
if (!hasHtpasswd) {
  console.warn(
    `auth_interop_test: "${HTPASSWD}" (Debian apache2-utils) not found; alice's htpasswd entry ` +
      "is made with bcryptjs instead",
  );
}

// ---------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  ok: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

async function run(bin: string, args: string[], env?: Record<string, string>): Promise<RunResult> {
  const out = await new Deno.Command(bin, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    ok: out.success,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

function describeRun(bin: string, args: string[], result: RunResult): string {
  return `${bin} ${args.join(" ")} (exit ${result.code}):\n${result.stdout}${result.stderr}`;
}

/** Runs `bin` and throws with its output unless it succeeds. */
async function mustRun(bin: string, args: string[]): Promise<RunResult> {
  const result = await run(bin, args);
  if (!result.ok) throw new Error(`${describeRun(bin, args, result)}`);
  return result;
}

/** Runs `bin`, expects it to fail, and returns its combined output. */
async function mustFail(bin: string, args: string[]): Promise<string> {
  const result = await run(bin, args);
  if (result.ok) throw new Error(`expected failure: ${describeRun(bin, args, result)}`);
  return result.stdout + result.stderr;
}

/** skopeo with the trust policy off (test images are unsigned). */
const skopeoArgs = (...args: string[]) => ["--insecure-policy", ...args];

// ---------------------------------------------------------------------------------------------
// Registry under test

interface Env {
  registry: TestRegistry;
  tmp: string;
  /** An auth file with no credentials, so clients never pick up the machine's own logins. */
  noAuth: string;
}

async function htpasswdFile(path: string): Promise<void> {
  let alice: string;
  if (hasHtpasswd) {
    // Debian's htpasswd writes `$2y$` bcrypt hashes (and a blank line after -n output).
    alice = (await mustRun(HTPASSWD, ["-nbB", ALICE.user, ALICE.password])).stdout.trim();
    assertMatch(alice, /^alice:\$2y\$/);
  } else {
    alice = `${ALICE.user}:${bcrypt.hashSync(ALICE.password, 5)}`;
  }
  const bob = `${BOB.user}:${bcrypt.hashSync(BOB.password, 5)}`;
  await Deno.writeTextFile(path, `${alice}\n${bob}\n`);
}

/** Starts Wharf with the users and rules above; `token` picks the token flow or Basic. */
async function withAuthRegistry(
  token: boolean,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "wharf-auth-interop-" });
  let registry: TestRegistry | undefined;
  try {
    const htpasswd = join(tmp, "htpasswd");
    await htpasswdFile(htpasswd);
    const noAuth = join(tmp, "no-auth.json");
    await Deno.writeTextFile(noAuth, "{}");
    registry = await startRegistry({
      config: {
        auth: {
          htpasswd,
          token: { enabled: token, expiresIn: 300, service: "wharf" },
          groups: { devs: [BOB.user] },
          rules: [
            { repositories: ["**"], users: [ALICE.user], actions: ["*"] },
            { repositories: ["team/**"], groups: ["devs"], actions: ["pull"] },
            { repositories: ["public/**"], anonymous: true, actions: ["pull"] },
          ],
        },
      },
    });
    await fn({ registry, tmp, noAuth });
  } catch (err) {
    if (registry) console.error(`registry log:\n${registry.logs()}`);
    throw err;
  } finally {
    await registry?.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Extra directories of the running test, removed when it ends. */
const cleanups: (() => Promise<void>)[] = [];

// ---------------------------------------------------------------------------------------------
// Raw HTTP

interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
}

async function http(url: string, init: RequestInit = {}): Promise<HttpReply> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function basic(creds: { user: string; password: string }): string {
  return `Basic ${btoa(`${creds.user}:${creds.password}`)}`;
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Asks `/token` for `scopes` (as `alice` etc. or anonymously); returns the raw reply. */
async function requestToken(
  registry: TestRegistry,
  scopes: string[],
  creds?: { user: string; password: string },
): Promise<HttpReply> {
  const url = new URL("/token", registry.url);
  url.searchParams.set("service", "wharf");
  for (const scope of scopes) url.searchParams.append("scope", scope);
  return await http(url.href, { headers: creds ? { Authorization: basic(creds) } : {} });
}

async function getToken(
  registry: TestRegistry,
  scopes: string[],
  creds?: { user: string; password: string },
): Promise<string> {
  const reply = await requestToken(registry, scopes, creds);
  assertEquals(reply.status, 200, `token request: ${reply.text}`);
  const body = JSON.parse(reply.text);
  assertOk(typeof body.token === "string" && body.token === body.access_token, reply.text);
  assertOk(body.expires_in >= 60, `expires_in ${body.expires_in}`);
  assertOk(!Number.isNaN(Date.parse(body.issued_at)), `issued_at ${body.issued_at}`);
  return body.token;
}

function base64urlDecode(part: string): string {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  return atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
}

function base64urlEncode(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The (unverified) claims of a JWT. */
function claims(token: string): Record<string, unknown> {
  return JSON.parse(base64urlDecode(token.split(".")[1]));
}

/** The challenge must be a Bearer one naming `error` (and the token realm). */
function assertBearerError(reply: HttpReply, error: string, what: string): void {
  assertEquals(reply.status, 401, `${what}: ${reply.text}`);
  const challenge = reply.headers.get("WWW-Authenticate") ?? "";
  assertMatch(challenge, /^Bearer realm="http:\/\/[^"]+\/token",service="wharf"/, what);
  assertMatch(challenge, new RegExp(`error="${error}"`), `${what}: ${challenge}`);
  assertMatch(reply.text, /UNAUTHORIZED/, what);
}

/** Pushes a one-blob image to `repo:tag` over raw HTTP with `authorization`. */
async function pushRaw(
  registry: TestRegistry,
  repo: string,
  tag: string,
  authorization: string,
): Promise<string> {
  const headers = { Authorization: authorization };
  const config = new TextEncoder().encode(JSON.stringify({ repo, tag, at: Date.now() }));
  const digest = `sha256:${
    Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", config)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("")
  }`;
  const post = await http(`${registry.url}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
    headers,
  });
  assertEquals(post.status, 202, `POST upload to ${repo}: ${post.text}`);
  const location = new URL(post.headers.get("Location")!, registry.url);
  location.searchParams.set("digest", digest);
  const put = await http(location.href, { method: "PUT", headers, body: config });
  assertEquals(put.status, 201, `PUT blob to ${repo}: ${put.text}`);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: config.length },
    layers: [],
  });
  const res = await http(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...headers, "Content-Type": MANIFEST_TYPE },
    body: manifest,
  });
  assertEquals(res.status, 201, `PUT manifest to ${repo}: ${res.text}`);
  return res.headers.get("Docker-Content-Digest") ?? "";
}

// ---------------------------------------------------------------------------------------------
// Images

async function makeLayout(dir: string): Promise<LayoutImage> {
  await initLayout(dir);
  const image = await writeImage(dir, { layerSizes: [3_000, 40_000] });
  await tagLayout(dir, "v1", image.descriptor);
  return image;
}

const creds = (c: { user: string; password: string }) => `${c.user}:${c.password}`;

// ---------------------------------------------------------------------------------------------
// skopeo, token flow

Deno.test({
  name: "auth interop (skopeo, token): push/pull by rules, 403 for readers, delete with * scope",
  ignore: !hasSkopeo,
  fn: () =>
    withAuthRegistry(true, async ({ registry, tmp, noAuth }) => {
      const src = join(tmp, "src");
      const image = await makeLayout(src);
      const host = registry.host;
      const push = (dest: string, who?: { user: string; password: string }) =>
        skopeoArgs(
          "copy",
          "--quiet",
          "--authfile",
          noAuth,
          "--dest-tls-verify=false",
          "--preserve-digests",
          ...(who ? ["--dest-creds", creds(who)] : []),
          `oci:${src}:v1`,
          `docker://${host}/${dest}`,
        );
      const pull = (from: string, out: string, who?: { user: string; password: string }) =>
        skopeoArgs(
          "copy",
          "--quiet",
          "--authfile",
          noAuth,
          "--src-tls-verify=false",
          "--preserve-digests",
          ...(who ? ["--src-creds", creds(who)] : []),
          `docker://${host}/${from}`,
          `oci:${out}:v1`,
        );
      const inspect = (ref: string, who?: { user: string; password: string }) =>
        skopeoArgs(
          "inspect",
          "--raw",
          "--authfile",
          noAuth,
          "--tls-verify=false",
          ...(who ? ["--creds", creds(who)] : []),
          `docker://${host}/${ref}`,
        );

      // alice may push anywhere and pull it back unchanged.
      for (const repo of ["priv/app", "team/app", "public/app"]) {
        await mustRun(SKOPEO, push(`${repo}:v1`, ALICE));
      }
      const aliceOut = join(tmp, "alice-out");
      await mustRun(SKOPEO, pull("priv/app:v1", aliceOut, ALICE));
      assertEquals((await readTag(aliceOut, "v1"))?.digest, image.descriptor.digest);

      // bob (devs) may pull team/** …
      const bobOut = join(tmp, "bob-out");
      await mustRun(SKOPEO, pull("team/app:v1", bobOut, BOB));
      assertEquals((await readTag(bobOut, "v1"))?.digest, image.descriptor.digest);
      // … but not push there: the registry answers 403 DENIED and skopeo reports it.
      const bobPush = await mustFail(SKOPEO, push("team/app:v2", BOB));
      assertMatch(bobPush, /denied/i);
      assertMatch(bobPush, /push on team\/app is not allowed/);
      const bobToken = await getToken(registry, ["repository:team/app:pull,push"], BOB);
      assertEquals(claims(bobToken).access, [
        { type: "repository", name: "team/app", actions: ["pull"] },
      ]);
      for (const authorization of [basic(BOB), `Bearer ${bobToken}`]) {
        const res = await http(`${registry.url}/v2/team/app/blobs/uploads/`, {
          method: "POST",
          headers: { Authorization: authorization },
        });
        assertEquals(res.status, 403, `bob's POST upload: ${res.text}`);
        assertMatch(res.text, /"DENIED"/);
      }
      // bob cannot read priv/** either.
      assertMatch(await mustFail(SKOPEO, inspect("priv/app:v1", BOB)), /denied/i);

      // Anonymous callers may pull public/** …
      const anonOut = join(tmp, "anon-out");
      await mustRun(SKOPEO, pull("public/app:v1", anonOut));
      assertEquals((await readTag(anonOut, "v1"))?.digest, image.descriptor.digest);
      // … but may not push there …
      await mustFail(SKOPEO, push("public/app:v2"));
      // … and a private repository is not theirs: the server asks for credentials.
      const anon = await http(`${registry.url}/v2/priv/app/manifests/v1`, {
        headers: { Accept: MANIFEST_TYPE },
      });
      assertEquals(anon.status, 401, anon.text);
      assertEquals(
        anon.headers.get("WWW-Authenticate"),
        `Bearer realm="${registry.url}/token",service="wharf",scope="repository:priv/app:pull"`,
      );

      // skopeo delete asks for a `*` token; bob's is refused, alice's works.
      const del = (who: typeof ALICE) =>
        skopeoArgs(
          "delete",
          "--authfile",
          noAuth,
          "--tls-verify=false",
          "--creds",
          creds(who),
          `docker://${host}/team/app:v1`,
        );
      assertMatch(await mustFail(SKOPEO, del(BOB)), /denied|403/i);
      await mustRun(SKOPEO, del(ALICE));
      const gone = await http(`${registry.url}/v2/team/app/manifests/${image.descriptor.digest}`, {
        headers: { Accept: MANIFEST_TYPE, Authorization: basic(ALICE) },
      });
      assertEquals(gone.status, 404, gone.text);
      assertMatch(await mustFail(SKOPEO, inspect("team/app:v1", ALICE)), /manifest unknown/i);
    }),
});

Deno.test({
  name:
    "auth interop (skopeo, token): anonymous pull of a private repository fails as unauthorized",
  ignore: !hasSkopeo,
  fn: () =>
    withAuthRegistry(true, async ({ registry, tmp, noAuth }) => {
      const src = join(tmp, "src");
      await makeLayout(src);
      await mustRun(
        SKOPEO,
        skopeoArgs(
          "copy",
          "--quiet",
          "--authfile",
          noAuth,
          "--dest-tls-verify=false",
          "--dest-creds",
          creds(ALICE),
          `oci:${src}:v1`,
          `docker://${registry.host}/priv/app:v1`,
        ),
      );
      // c/image fetches an anonymous token (no credentials), then reads the manifest with it.
      const out = await mustFail(
        SKOPEO,
        skopeoArgs(
          "inspect",
          "--raw",
          "--authfile",
          noAuth,
          "--tls-verify=false",
          `docker://${registry.host}/priv/app:v1`,
        ),
      );
      assertMatch(out, /unauthorized|authentication required/i, out);
    }),
});

// ---------------------------------------------------------------------------------------------
// podman, token flow

/**
 * podman as root with its own storage, no events or cgroups, so tests do not interfere. The
 * run root lives in `/tmp` under a short name: podman refuses run roots over 50 characters.
 */
async function podmanStore(tmp: string, name: string) {
  const root = join(tmp, `${name}-root`);
  await Deno.mkdir(root, { recursive: true });
  const runroot = await Deno.makeTempDir({ dir: "/tmp", prefix: "wrr" });
  // Removed with the test's temp dir through this link; the run root itself is removed here.
  cleanups.push(() => Deno.remove(runroot, { recursive: true }));
  const global = [
    "--root",
    root,
    "--runroot",
    runroot,
    "--storage-driver",
    "vfs",
    "--events-backend",
    "none",
    "--cgroup-manager",
    "cgroupfs",
  ];
  return (...args: string[]) => [...global, ...args];
}

/** A small single-layer image in a podman store, made with `tar` + `podman import`. */
async function importImage(
  podman: (...args: string[]) => string[],
  tmp: string,
  name: string,
): Promise<string> {
  const ctx = join(tmp, "rootfs");
  await Deno.mkdir(join(ctx, "etc"), { recursive: true });
  await Deno.writeTextFile(join(ctx, "etc", "wharf-test"), `${crypto.randomUUID()}\n`);
  const tar = join(tmp, "rootfs.tar");
  await mustRun("tar", ["-C", ctx, "-cf", tar, "."]);
  await mustRun(PODMAN, podman("import", "--quiet", tar, name));
  return (await mustRun(PODMAN, podman("image", "inspect", "--format", "{{.Id}}", name))).stdout
    .trim();
}

Deno.test({
  name: "auth interop (podman, token): login, push, pull, 403 for readers, anonymous public pull",
  ignore: !hasPodman,
  fn: () =>
    withAuthRegistry(true, async ({ registry, tmp, noAuth }) => {
      const host = registry.host;
      const pusher = await podmanStore(tmp, "pusher");
      const puller = await podmanStore(tmp, "puller");
      const aliceAuth = join(tmp, "alice-auth.json");
      const bobAuth = join(tmp, "bob-auth.json");
      const id = await importImage(pusher, tmp, "localhost/wharf-test/img:v1");

      const login = (authfile: string, who: typeof ALICE, password = who.password) =>
        pusher(
          "login",
          "--tls-verify=false",
          "--authfile",
          authfile,
          "--username",
          who.user,
          "--password",
          password,
          host,
        );

      // A wrong password is refused; the right one logs in.
      const wrong = await mustFail(PODMAN, login(aliceAuth, ALICE, "not-the-password"));
      assertMatch(wrong, /invalid username\/password|unauthorized/i);
      const ok = await mustRun(PODMAN, login(aliceAuth, ALICE));
      assertMatch(ok.stdout + ok.stderr, /Login Succeeded/);
      const saved = JSON.parse(await Deno.readTextFile(aliceAuth));
      assertOk(saved.auths?.[host]?.auth, `auth file: ${JSON.stringify(saved)}`);

      // alice pushes to a private and a public repository …
      for (const repo of ["priv/img", "team/img", "public/img"]) {
        await mustRun(
          PODMAN,
          pusher(
            "push",
            "--quiet",
            "--tls-verify=false",
            "--authfile",
            aliceAuth,
            "localhost/wharf-test/img:v1",
            `${host}/${repo}:v1`,
          ),
        );
      }
      // … and pulls the private one into an empty store: same image ID (config digest).
      await mustRun(
        PODMAN,
        puller(
          "pull",
          "--quiet",
          "--tls-verify=false",
          "--authfile",
          aliceAuth,
          `${host}/priv/img:v1`,
        ),
      );
      const pulledId = await mustRun(
        PODMAN,
        puller("image", "inspect", "--format", "{{.Id}}", `${host}/priv/img:v1`),
      );
      assertEquals(pulledId.stdout.trim(), id);

      // bob logs in and may pull team/**, but pushing there is denied (403).
      await mustRun(PODMAN, login(bobAuth, BOB));
      await mustRun(
        PODMAN,
        puller(
          "pull",
          "--quiet",
          "--tls-verify=false",
          "--authfile",
          bobAuth,
          `${host}/team/img:v1`,
        ),
      );
      const bobPush = await mustFail(
        PODMAN,
        pusher(
          "push",
          "--tls-verify=false",
          "--authfile",
          bobAuth,
          "localhost/wharf-test/img:v1",
          `${host}/team/img:v2`,
        ),
      );
      assertMatch(bobPush, /denied/i);
      assertMatch(bobPush, /push on team\/img is not allowed/);

      // Anonymous: public/** pulls, priv/** does not.
      const anonymous = await podmanStore(tmp, "anonymous");
      await mustRun(
        PODMAN,
        anonymous(
          "pull",
          "--quiet",
          "--tls-verify=false",
          "--authfile",
          noAuth,
          `${host}/public/img:v1`,
        ),
      );
      const anonId = await mustRun(
        PODMAN,
        anonymous("image", "inspect", "--format", "{{.Id}}", `${host}/public/img:v1`),
      );
      assertEquals(anonId.stdout.trim(), id);
      // A private repository fails for anonymous callers (how: see the next test).
      await mustFail(
        PODMAN,
        anonymous("pull", "--tls-verify=false", "--authfile", noAuth, `${host}/priv/img:v1`),
      );
    }),
});

Deno.test({
  name:
    "auth interop (podman, token): anonymous pull of a private repository fails as unauthorized",
  ignore: !hasPodman,
  fn: () =>
    withAuthRegistry(true, async ({ registry, tmp, noAuth }) => {
      const store = await podmanStore(tmp, "store");
      await importImage(store, tmp, "localhost/wharf-test/img:v1");
      await mustRun(
        PODMAN,
        store(
          "push",
          "--quiet",
          "--tls-verify=false",
          "--creds",
          creds(ALICE),
          "localhost/wharf-test/img:v1",
          `${registry.host}/priv/img:v1`,
        ),
      );
      const anonymous = await podmanStore(tmp, "anonymous");
      const out = await mustFail(
        PODMAN,
        anonymous(
          "pull",
          "--tls-verify=false",
          "--authfile",
          noAuth,
          `${registry.host}/priv/img:v1`,
        ),
      );
      // 401 → c/image says "unauthorized: authentication required" (a 403 reads "denied: …").
      assertMatch(out, /unauthorized|authentication required/i, out);
    }),
});

// ---------------------------------------------------------------------------------------------
// Raw HTTP, token flow

Deno.test("auth interop (HTTP, token): token endpoint, expired, tampered and foreign tokens", () =>
  withAuthRegistry(true, async ({ registry }) => {
    const url = registry.url;

    // The challenge of `/v2/` names the realm on the registry's own host:port, without scope.
    const ping = await http(`${url}/v2/`);
    assertEquals(ping.status, 401);
    assertEquals(
      ping.headers.get("WWW-Authenticate"),
      `Bearer realm="${url}/token",service="wharf"`,
    );

    // Bad credentials at /token → 401; good ones get the intersection with the rules.
    assertEquals((await requestToken(registry, [], { ...ALICE, password: "nope" })).status, 401);
    const aliceToken = await getToken(registry, ["repository:priv/app:pull,push"], ALICE);
    assertEquals(claims(aliceToken).access, [
      { type: "repository", name: "priv/app", actions: ["pull", "push"] },
    ]);
    assertEquals(claims(aliceToken).sub, ALICE.user);
    const bobToken = await getToken(registry, ["repository:priv/app:pull"], BOB);
    assertEquals(claims(bobToken).access, []);
    assertEquals((await http(`${url}/v2/`, { headers: bearer(aliceToken) })).status, 200);
    await pushRaw(registry, "priv/app", "v1", `Bearer ${aliceToken}`);
    const pullOnly = await getToken(registry, ["repository:priv/app:pull"], ALICE);
    const tagsOk = await http(`${url}/v2/priv/app/tags/list`, { headers: bearer(pullOnly) });
    assertEquals(tagsOk.status, 200, tagsOk.text);

    // A token lacking a scope alice could get → 401 insufficient_scope naming that scope.
    const noPush = await http(`${url}/v2/priv/app/blobs/uploads/`, {
      method: "POST",
      headers: bearer(pullOnly),
    });
    assertBearerError(noPush, "insufficient_scope", "pull-only token on POST upload");
    assertMatch(noPush.headers.get("WWW-Authenticate")!, /scope="repository:priv\/app:[^"]*push/);

    // Tokens minted with the server's own key: a valid one works (so the key is the right one) …
    const keyPath = join(registry.dataDir, "token-signing-key.pem");
    const options = { issuer: "wharf", service: "wharf" };
    const access = [{ type: "repository", name: "priv/app", actions: ["pull"] }];
    const valid = await (await TokenService.load(keyPath, { ...options, expiresIn: 300 }))
      .issue(ALICE.user, access);
    const validTags = await http(`${url}/v2/priv/app/tags/list`, { headers: bearer(valid.token) });
    assertEquals(validTags.status, 200, validTags.text);

    // … an expired one does not.
    const expired = await (await TokenService.load(keyPath, { ...options, expiresIn: -30 }))
      .issue(ALICE.user, access);
    for (const path of ["/v2/", "/v2/priv/app/tags/list"]) {
      const res = await http(`${url}${path}`, { headers: bearer(expired.token) });
      assertBearerError(res, "invalid_token", `expired token on ${path}`);
    }

    // A tampered payload (bob promoted to alice with push) breaks the signature.
    const [header, payload, signature] = bobToken.split(".");
    const forged = JSON.parse(base64urlDecode(payload));
    forged.sub = ALICE.user;
    forged.access = [{ type: "repository", name: "priv/app", actions: ["pull", "push"] }];
    const tampered = [header, base64urlEncode(JSON.stringify(forged)), signature].join(".");
    assertOk(tampered !== bobToken);
    for (const path of ["/v2/", "/v2/priv/app/tags/list"]) {
      const res = await http(`${url}${path}`, { headers: bearer(tampered) });
      assertBearerError(res, "invalid_token", `tampered token on ${path}`);
    }
    const flipped = `${header}.${payload.slice(0, -2)}${payload.at(-2) === "A" ? "B" : "A"}${
      payload.at(-1)
    }.${signature}`;
    assertBearerError(
      await http(`${url}/v2/`, { headers: bearer(flipped) }),
      "invalid_token",
      "token with a flipped payload character",
    );

    // A well-formed token signed by another Ed25519 key.
    const foreignService = await TokenService.fromPem(
      TokenService.generateKey(),
      { ...options, expiresIn: 300 },
      "foreign",
    );
    const foreign = await foreignService.issue(ALICE.user, access);
    for (const path of ["/v2/", "/v2/priv/app/tags/list"]) {
      const res = await http(`${url}${path}`, { headers: bearer(foreign.token) });
      assertBearerError(res, "invalid_token", `foreign-key token on ${path}`);
    }
    // Garbage is refused the same way.
    assertBearerError(
      await http(`${url}/v2/`, { headers: bearer("not.a.jwt") }),
      "invalid_token",
      "garbage token",
    );

    // The catalog needs registry:catalog:* and then lists only what the user may read.
    await pushRaw(registry, "team/app", "v1", basic(ALICE));
    const noCatalog = await http(`${url}/v2/_catalog`, { headers: bearer(aliceToken) });
    assertBearerError(noCatalog, "insufficient_scope", "catalog without registry:catalog:*");
    const aliceCatalog = await getToken(registry, ["registry:catalog:*"], ALICE);
    const all = await http(`${url}/v2/_catalog`, { headers: bearer(aliceCatalog) });
    assertEquals(all.status, 200, all.text);
    assertEquals(JSON.parse(all.text).repositories, ["priv/app", "team/app"]);
    const bobCatalog = await getToken(registry, ["registry:catalog:*"], BOB);
    const bobs = await http(`${url}/v2/_catalog`, { headers: bearer(bobCatalog) });
    assertEquals(bobs.status, 200, bobs.text);
    assertEquals(JSON.parse(bobs.text).repositories, ["team/app"]);
  }));

Deno.test("auth interop (HTTP, token): anonymous token on a private repository → 401, not 403", () =>
  withAuthRegistry(true, async ({ registry }) => {
    await pushRaw(registry, "priv/app", "v1", basic(ALICE));
    // What c/image does without credentials: fetch an anonymous token for the scope, use it.
    const anonToken = await getToken(registry, ["repository:priv/app:pull"]);
    assertEquals(claims(anonToken).access, []);
    const res = await http(`${registry.url}/v2/priv/app/manifests/v1`, {
      headers: { Accept: MANIFEST_TYPE, ...bearer(anonToken) },
    });
    // Anonymous callers are unauthenticated: they must be asked to log in (401 + challenge with
    // the scope), as for a request without any Authorization header — not told DENIED (403).
    assertEquals(res.status, 401, `anonymous token on a private manifest: ${res.text}`);
    assertMatch(
      res.headers.get("WWW-Authenticate") ?? "",
      /^Bearer realm="[^"]+",service="wharf",scope="repository:priv\/app:pull"/,
    );
  }));

// ---------------------------------------------------------------------------------------------
// Basic mode

Deno.test("auth interop (HTTP, basic): /v2/ challenges with Basic; credentials and rules apply", () =>
  withAuthRegistry(false, async ({ registry }) => {
    const url = registry.url;
    const ping = await http(`${url}/v2/`);
    assertEquals(ping.status, 401, ping.text);
    assertMatch(ping.headers.get("WWW-Authenticate") ?? "", /^Basic realm="[^"]*"$/);
    assertEquals(
      (await http(`${url}/v2/`, { headers: { Authorization: basic(ALICE) } })).status,
      200,
    );
    const wrong = await http(`${url}/v2/`, {
      headers: { Authorization: basic({ ...ALICE, password: "nope" }) },
    });
    assertEquals(wrong.status, 401, wrong.text);
    assertMatch(wrong.headers.get("WWW-Authenticate") ?? "", /^Basic realm=/);
    await pushRaw(registry, "team/app", "v1", basic(ALICE));
    const bobPull = await http(`${url}/v2/team/app/manifests/v1`, {
      headers: { Accept: MANIFEST_TYPE, Authorization: basic(BOB) },
    });
    assertEquals(bobPull.status, 200, bobPull.text);
    const bobPush = await http(`${url}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      headers: { Authorization: basic(BOB) },
    });
    assertEquals(bobPush.status, 403, bobPush.text);
    const anon = await http(`${url}/v2/team/app/manifests/v1`, {
      headers: { Accept: MANIFEST_TYPE },
    });
    assertEquals(anon.status, 401, anon.text);
    assertMatch(anon.headers.get("WWW-Authenticate") ?? "", /^Basic realm=/);
  }));

Deno.test({
  name: "auth interop (skopeo, basic): --creds push and pull work, wrong password and readers fail",
  ignore: !hasSkopeo,
  fn: () =>
    withAuthRegistry(false, async ({ registry, tmp, noAuth }) => {
      const src = join(tmp, "src");
      const out = join(tmp, "out");
      const image = await makeLayout(src);
      const dest = `docker://${registry.host}/priv/basic:v1`;
      const push = (who: typeof ALICE) =>
        skopeoArgs(
          "copy",
          "--quiet",
          "--authfile",
          noAuth,
          "--dest-tls-verify=false",
          "--preserve-digests",
          "--dest-creds",
          creds(who),
          `oci:${src}:v1`,
          dest,
        );
      const wrong = await mustFail(SKOPEO, push({ ...ALICE, password: "nope" }));
      assertMatch(wrong, /unauthorized|authentication required|401/i);
      await mustRun(SKOPEO, push(ALICE));
      await mustRun(
        SKOPEO,
        skopeoArgs(
          "copy",
          "--quiet",
          "--authfile",
          noAuth,
          "--src-tls-verify=false",
          "--preserve-digests",
          "--src-creds",
          creds(ALICE),
          dest,
          `oci:${out}:v1`,
        ),
      );
      assertEquals((await readTag(out, "v1"))?.digest, image.descriptor.digest);
      const raw = await mustRun(
        SKOPEO,
        skopeoArgs(
          "inspect",
          "--raw",
          "--authfile",
          noAuth,
          "--tls-verify=false",
          "--creds",
          creds(ALICE),
          dest,
        ),
      );
      assertEquals(new TextEncoder().encode(raw.stdout), image.manifest);

      // bob may not push (403) and may not read priv/** (403); anonymous gets 401.
      // (skopeo first checks for the layers: HEAD on priv/**, a 403 without body.)
      assertMatch(await mustFail(SKOPEO, push(BOB)), /denied|403 \(Forbidden\)/i);
      const anon = await mustFail(
        SKOPEO,
        skopeoArgs("inspect", "--raw", "--authfile", noAuth, "--tls-verify=false", dest),
      );
      assertMatch(anon, /unauthorized|authentication required/i, anon);

      // skopeo delete with Basic credentials.
      await mustRun(
        SKOPEO,
        skopeoArgs(
          "delete",
          "--authfile",
          noAuth,
          "--tls-verify=false",
          "--creds",
          creds(ALICE),
          dest,
        ),
      );
      const gone = await http(
        `${registry.url}/v2/priv/basic/manifests/${image.descriptor.digest}`,
        { headers: { Accept: MANIFEST_TYPE, Authorization: basic(ALICE) } },
      );
      assertEquals(gone.status, 404, gone.text);
    }),
});

Deno.test({
  name: "auth interop (podman, basic): login fails with a wrong password, succeeds and pushes",
  ignore: !hasPodman,
  fn: () =>
    withAuthRegistry(false, async ({ registry, tmp }) => {
      const podman = await podmanStore(tmp, "store");
      const authfile = join(tmp, "auth.json");
      await importImage(podman, tmp, "localhost/wharf-test/img:v1");
      const login = (password: string) =>
        podman(
          "login",
          "--tls-verify=false",
          "--authfile",
          authfile,
          "--username",
          ALICE.user,
          "--password",
          password,
          registry.host,
        );
      assertMatch(
        await mustFail(PODMAN, login("nope")),
        /invalid username\/password|unauthorized/i,
      );
      await mustRun(PODMAN, login(ALICE.password));
      await mustRun(
        PODMAN,
        podman(
          "push",
          "--quiet",
          "--tls-verify=false",
          "--authfile",
          authfile,
          "localhost/wharf-test/img:v1",
          `${registry.host}/priv/podman:v1`,
        ),
      );
      const res = await http(`${registry.url}/v2/priv/podman/tags/list`, {
        headers: { Authorization: basic(ALICE) },
      });
      assertEquals(res.status, 200, res.text);
      assertEquals(JSON.parse(res.text).tags, ["v1"]);
    }),
});
