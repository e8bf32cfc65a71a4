/**
 * Access control over HTTP against a real server with a token-auth config: challenges, token
 * grants, 401 against 403, catalog filtering, mounts from unreadable repositories, and slowed
 * failed logins.
 */
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { startRegistry, type TestRegistry, writeHtpasswd } from "./harness.ts";
import { errorCode, pushBlob, pushImage, randomBytes } from "./oci_client.ts";

const USERS = { alice: "alice-pw", bob: "bob-pw" };

function basic(user: keyof typeof USERS | "mallory", password?: string): string {
  return `Basic ${btoa(`${user}:${password ?? USERS[user as keyof typeof USERS]}`)}`;
}

async function token(
  registry: TestRegistry,
  scopes: string[],
  authorization?: string,
): Promise<string> {
  const url = new URL("/token", registry.url);
  url.searchParams.set("service", "wharf");
  for (const scope of scopes) url.searchParams.append("scope", scope);
  const response = await fetch(url, {
    headers: authorization ? { Authorization: authorization } : {},
  });
  const body = await response.json();
  assertEquals(response.status, 200, JSON.stringify(body));
  assertEquals(body.token, body.access_token);
  assertOk(body.expires_in >= 60 && typeof body.issued_at === "string");
  return body.token;
}

function claims(jwt: string) {
  const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload));
}

Deno.test("token auth: challenges, grants, 401 and 403, catalog and mounts", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-auth-" });
  const registry = await startRegistry({
    dataDir: dir,
    config: {
      auth: {
        htpasswd: await writeHtpasswd(dir, USERS),
        groups: { devs: ["bob"] },
        rules: [
          { repositories: ["**"], users: ["alice"], actions: ["*"] },
          { repositories: ["team/**"], groups: ["devs"], actions: ["pull"] },
          { repositories: ["public/**"], anonymous: true, actions: ["pull"] },
        ],
      },
    },
  });
  const base = registry.url;
  try {
    await t.step("/v2/ challenges anonymous callers and accepts any valid login", async () => {
      const anonymous = await fetch(`${base}/v2/`);
      assertEquals(anonymous.status, 401);
      assertEquals(await errorCode(anonymous), "UNAUTHORIZED");
      assertEquals(
        anonymous.headers.get("www-authenticate"),
        `Bearer realm="${base}/token",service="wharf"`,
      );
      assertEquals(anonymous.headers.get("docker-distribution-api-version"), "registry/2.0");
      const bare = await token(registry, [], basic("bob")); // podman login asks for no scope
      const ok = await fetch(`${base}/v2/`, { headers: { Authorization: `Bearer ${bare}` } });
      assertEquals(ok.status, 200);
      await ok.body?.cancel();
      const viaBasic = await fetch(`${base}/v2/`, { headers: { Authorization: basic("alice") } });
      assertEquals(viaBasic.status, 200);
      await viaBasic.body?.cancel();
      const wrong = await fetch(`${base}/token?scope=repository:team/app:pull`, {
        headers: { Authorization: basic("alice", "nope") },
      });
      assertEquals(wrong.status, 401);
      await wrong.body?.cancel();
    });

    await t.step("tokens grant the intersection of the scope and the rules", async () => {
      const alice = claims(
        await token(registry, ["repository:team/app:push,pull,delete"], basic("alice")),
      );
      assertEquals(alice.sub, "alice");
      assertEquals(alice.access, [{
        type: "repository",
        name: "team/app",
        actions: ["pull", "push", "delete"],
      }]);
      const bob = claims(
        await token(
          registry,
          ["repository:team/app:pull,push", "repository:other/x:pull"],
          basic("bob"),
        ),
      );
      assertEquals(bob.access, [{ type: "repository", name: "team/app", actions: ["pull"] }]);
      const star = claims(await token(registry, ["repository:team/app:*"], basic("alice")));
      assertEquals(star.access[0].actions, ["pull", "push", "delete"]);
      const anonymous = claims(
        await token(registry, ["repository:public/a:pull,push", "repository:team/app:pull"]),
      );
      assertEquals(anonymous.sub, "");
      assertEquals(anonymous.access, [{ type: "repository", name: "public/a", actions: ["pull"] }]);
    });

    await t.step("push with a token; readers get 403, anonymous 401 with the scope", async () => {
      const push = await token(registry, ["repository:team/app:pull,push"], basic("alice"));
      const start = await fetch(`${base}/v2/team/app/blobs/uploads/`, {
        method: "POST",
        headers: { Authorization: `Bearer ${push}` },
      });
      assertEquals(start.status, 202);
      await start.body?.cancel();

      const reader = await token(registry, ["repository:team/app:pull,push"], basic("bob"));
      const denied = await fetch(`${base}/v2/team/app/blobs/uploads/`, {
        method: "POST",
        headers: { Authorization: `Bearer ${reader}` },
      });
      assertEquals(denied.status, 403);
      assertEquals(await errorCode(denied), "DENIED");

      const anonymous = await fetch(`${base}/v2/team/app/tags/list`);
      assertEquals(anonymous.status, 401);
      assertEquals(
        anonymous.headers.get("www-authenticate"),
        `Bearer realm="${base}/token",service="wharf",scope="repository:team/app:pull"`,
      );
      await anonymous.body?.cancel();

      // A pull-only token of a user who may push: 401 insufficient_scope, so clients re-ask.
      const narrow = await token(registry, ["repository:team/app:pull"], basic("alice"));
      const more = await fetch(`${base}/v2/team/app/blobs/uploads/`, {
        method: "POST",
        headers: { Authorization: `Bearer ${narrow}` },
      });
      assertEquals(more.status, 401);
      assertMatch(
        more.headers.get("www-authenticate")!,
        /scope="repository:team\/app:pull,push",error="insufficient_scope"/,
      );
      await more.body?.cancel();

      const basicDenied = await fetch(`${base}/v2/team/app/blobs/uploads/`, {
        method: "POST",
        headers: { Authorization: basic("bob") },
      });
      assertEquals(basicDenied.status, 403);
      await basicDenied.body?.cancel();
    });

    await t.step("a mount from an unreadable repository falls back to an upload", async () => {
      const adminHeaders = { Authorization: basic("alice") };
      const bytes = randomBytes(512);
      const digest = await pushBlob(base, "secret/src", bytes, adminHeaders);
      await pushBlob(base, "team/app", randomBytes(16), adminHeaders);
      // bob may only pull team/**; give him a push target via a narrower rule check: he can't
      // push anywhere, so use alice's token scoped to the target only.
      const scoped = await token(registry, ["repository:public/dst:pull,push"], basic("alice"));
      const mount = await fetch(
        `${base}/v2/public/dst/blobs/uploads/?mount=${digest}&from=secret/src`,
        {
          method: "POST",
          headers: { Authorization: `Bearer ${scoped}` },
        },
      );
      assertEquals(mount.status, 202, "token lacks pull on secret/src: upload session instead");
      await mount.body?.cancel();
      const both = await token(registry, [
        "repository:public/dst:pull,push",
        "repository:secret/src:pull",
      ], basic("alice"));
      const mounted = await fetch(
        `${base}/v2/public/dst/blobs/uploads/?mount=${digest}&from=secret/src`,
        {
          method: "POST",
          headers: { Authorization: `Bearer ${both}` },
        },
      );
      assertEquals(mounted.status, 201);
      await mounted.body?.cancel();
    });

    await t.step("the catalog lists only readable repositories", async () => {
      const headers = { Authorization: basic("alice") };
      for (const repo of ["team/app", "public/dst", "secret/src"]) {
        await pushImage(base, repo, "latest", { layers: 0, headers });
      }
      const catalog = async (authorization?: string) => {
        const response = await fetch(`${base}/v2/_catalog`, {
          headers: authorization ? { Authorization: authorization } : {},
        });
        assertEquals(response.status, 200);
        return (await response.json()).repositories;
      };
      assertEquals(await catalog(basic("alice")), ["public/dst", "secret/src", "team/app"]);
      assertEquals(await catalog(basic("bob")), ["team/app"]);
      assertEquals(await catalog(), ["public/dst"]);
      const noCatalogScope = await token(registry, ["repository:team/app:pull"], basic("bob"));
      const refused = await fetch(`${base}/v2/_catalog`, {
        headers: { Authorization: `Bearer ${noCatalogScope}` },
      });
      assertEquals(refused.status, 401);
      await refused.body?.cancel();
      const withScope = await token(registry, ["registry:catalog:*"], basic("bob"));
      assertEquals(await catalog(`Bearer ${withScope}`), ["team/app"]);
    });

    await t.step("repeated failed logins from one address are slowed down", async () => {
      const attempt = async () => {
        const started = performance.now();
        const response = await fetch(`${base}/v2/`, {
          headers: { Authorization: basic("mallory", "x") },
        });
        await response.body?.cancel();
        assertEquals(response.status, 401);
        return performance.now() - started;
      };
      for (let i = 0; i < 4; i++) await attempt();
      assertOk(await attempt() >= 450, "the fifth failure waits at least 500 ms");
      assertEquals(registry.logs().includes("mallory") && registry.logs().includes('"x"'), false);
    });
  } finally {
    await registry.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the embedded default lets loopback callers do everything without credentials", async () => {
  const registry = await startRegistry();
  try {
    const v2 = await fetch(`${registry.url}/v2/`);
    assertEquals(v2.status, 200);
    await v2.body?.cancel();
    await pushBlob(registry.url, "open/app", randomBytes(10));
    assertMatch(registry.logs(), /"auth":"open"/);
  } finally {
    await registry.close();
  }
});
