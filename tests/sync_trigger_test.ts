/**
 * Starting a mirror's run over HTTP (`POST /wharf/v1/sync/mirrors/<name>/runs`), against a real
 * `wharf serve` with token auth whose mirror copies from a real upstream Wharf through the fault
 * proxy (blobs trickle, so a run lasts seconds, deterministically). A run is started (202 and a
 * `Location` polled until the run ends, the image mirrored, the run counted in `/metrics`); a
 * second start while it goes is refused (409 naming the run), also when the running run is a
 * `wharf sync run` in another process; anonymous callers are challenged (401), callers without
 * push on the whole destination are refused (403), an unknown mirror is 404, and a token starts
 * a mirror of explicit repositories only with push on each. Without logins (open mode), a loopback
 * caller may start a run and another address may not.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { runWharf, startRegistry, type TestRegistry, writeHtpasswd } from "./harness.ts";
import { startFaultProxy } from "./sync_fault_proxy.ts";
import { clientFor, pushTestImage } from "./sync_fixtures.ts";
import { parseConfig } from "../src/config/load.ts";
import { createLogger } from "../src/log/logger.ts";
import { startServer } from "../src/server.ts";

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");
const LAYER = { layers: 2, layerSize: 48 * 1024 };
/** Blobs from the upstream arrive 1 KiB every 60 ms: a 48 KiB layer takes about 3 s. */
const TRICKLE = { kind: "slow" as const, path: /\/blobs\/sha256:/, times: Infinity, delayMs: 60 };

interface Run {
  id: number;
  mirror: string;
  trigger: string;
  outcome: string;
  pid: number;
  host: string;
  images: number;
  unchanged: number;
  errors: string[];
}

const basic = (user: string) => ({ authorization: `Basic ${btoa(`${user}:${user}-pw`)}` });

function start(base: string, mirror: string, headers: Record<string, string> = {}) {
  return fetch(`${base}/wharf/v1/sync/mirrors/${mirror}/runs`, { method: "POST", headers });
}

async function errorOf(response: Response) {
  return (await response.json()).errors[0] as {
    code: string;
    message: string;
    detail: Record<string, unknown> & { run?: { id: number; pid: number } };
  };
}

/** Polls `location` until the run is no longer running. */
async function finished(base: string, location: string, headers: Record<string, string>) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${base}${location}`, { headers });
    assertEquals(response.status, 200);
    const run: Run = await response.json();
    if (run.outcome !== "running") return run;
    if (Date.now() > deadline) throw new Error(`run ${run.id} still running`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function digestOf(base: string, repo: string, tag: string, headers = {}) {
  const response = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: ACCEPT, ...headers },
  });
  await response.body?.cancel();
  return response.status === 200 ? response.headers.get("docker-content-digest") : null;
}

async function tokenFor(base: string, user: string, scope: string): Promise<string> {
  const response = await fetch(`${base}/token?service=wharf&scope=${encodeURIComponent(scope)}`, {
    headers: basic(user),
  });
  assertEquals(response.status, 200);
  return (await response.json()).token;
}

Deno.test("sync trigger: POST starts a run, 409 while it runs, access decided per destination", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-trigger-" });
  const upstream = await startRegistry();
  const proxy = startFaultProxy(upstream.url);
  let mirror: TestRegistry | undefined;
  try {
    const up = clientFor(upstream.host);
    const first = await pushTestImage(up, "team/app", "1", LAYER);
    mirror = await startRegistry({
      config: {
        auth: {
          htpasswd: await writeHtpasswd(dir, {
            alice: "alice-pw",
            reader: "reader-pw",
            carol: "carol-pw",
          }),
          rules: [
            { repositories: ["mirror/**"], users: ["alice"], actions: ["*"] },
            // Push on one repository of each mirror's destination, not on the hub's whole glob.
            {
              repositories: ["mirror/hub/team/app", "mirror/solo/team/app"],
              users: ["carol"],
              actions: ["push"],
            },
            { repositories: ["**"], users: ["reader", "carol"], actions: ["pull"] },
          ],
        },
        mirrors: [
          {
            name: "hub",
            upstream: proxy.url,
            repositories: ["team/*"],
            destination: { prefix: "mirror/hub/" },
          },
          {
            name: "solo",
            upstream: upstream.url,
            repositories: ["team/app"],
            destination: { prefix: "mirror/solo/" },
          },
        ],
      },
    });
    const base = mirror.url;

    await t.step("anonymous callers are challenged like the rest of the API", async () => {
      const anonymous = await start(base, "hub");
      assertEquals(anonymous.status, 401);
      assertMatch(anonymous.headers.get("www-authenticate") ?? "", /^Bearer realm="[^"]+\/token"/);
      assertEquals((await errorOf(anonymous)).code, "UNAUTHORIZED");
      const status = await fetch(`${base}/wharf/v1/sync/runs/1`);
      assertEquals(status.status, 401);
      await status.body?.cancel();
    });

    await t.step("push on only part of the destination is refused (403)", async () => {
      for (const user of ["reader", "carol"]) {
        const refused = await start(base, "hub", basic(user));
        assertEquals(refused.status, 403, user);
        const error = await errorOf(refused);
        assertEquals(error.code, "DENIED");
        assertEquals(error.detail, [
          { Type: "repository", Name: "mirror/hub/team/*", Action: "push" },
        ] as unknown as Record<string, unknown>);
      }
      const runs = await fetch(`${base}/wharf/v1/sync`, { headers: basic("alice") });
      assertEquals((await runs.json()).runs, []);
    });

    await t.step("an unknown mirror or run is 404", async () => {
      const unknown = await start(base, "nope", basic("alice"));
      assertEquals(unknown.status, 404);
      assertMatch((await errorOf(unknown)).message, /no mirror named "nope"/);
      for (const id of ["999999", "abc"]) {
        const run = await fetch(`${base}/wharf/v1/sync/runs/${id}`, { headers: basic("alice") });
        assertEquals(run.status, 404);
        await run.body?.cancel();
      }
    });

    await t.step(
      "202 with the run's Location; 409 while it runs; the image is mirrored",
      async () => {
        proxy.faults.push({ ...TRICKLE });
        const started = Date.now();
        const accepted = await start(base, "hub", basic("alice"));
        assertEquals(accepted.status, 202);
        const run: Run = await accepted.json();
        assertEquals([run.mirror, run.trigger, run.outcome], ["hub", "http:alice", "running"]);
        const location = accepted.headers.get("location") ?? "";
        assertEquals(location, `/wharf/v1/sync/runs/${run.id}`);

        const again = await start(base, "hub", basic("alice"));
        assertEquals(again.status, 409);
        const conflict = await errorOf(again);
        assertEquals(conflict.code, "CONFLICT");
        assertMatch(conflict.message, new RegExp(`already running: run ${run.id}\\b`));
        assertEquals(conflict.detail.run?.id, run.id);
        assertEquals(conflict.detail.location, location);

        const done = await finished(base, location, basic("reader"));
        assertEquals(done.outcome, "success", done.errors.join("\n"));
        assertEquals(done.images, 1);
        assertOk(Date.now() - started >= 2500, "the trickled run took its time");
        assertOk((proxy.hits.slow ?? 0) >= 2, "blobs came through the slow proxy");
        assertEquals(
          await digestOf(base, "mirror/hub/team/app", "1", basic("reader")),
          first.digest,
        );
        const metrics = await (await fetch(`${base}/metrics`)).text();
        assertMatch(metrics, /^wharf_sync_runs_total\{mirror="hub",outcome="success"\} 1$/m);
        assertMatch(mirror!.logs(), new RegExp(`"msg":"run requested"[^\\n]*"run":${run.id}`));
      },
    );

    await t.step("a run of another process (wharf sync run) is named by the 409", async () => {
      await pushTestImage(up, "team/app", "2", LAYER);
      const cli = runWharf([
        "sync",
        "run",
        "hub",
        "-q",
        "-c",
        join(mirror!.dataDir, "test-config.yaml"),
        "-d",
        mirror!.dataDir,
      ]);
      let other: Run | undefined;
      const deadline = Date.now() + 30_000;
      while (!other && Date.now() < deadline) {
        const response = await fetch(`${base}/wharf/v1/sync?mirror=hub`, {
          headers: basic("alice"),
        });
        const runs: Run[] = (await response.json()).runs;
        other = runs.find((r) => r.trigger === "cli" && r.outcome === "running");
        if (!other) await new Promise((r) => setTimeout(r, 100));
      }
      assertOk(other, "the CLI run shows in the history");
      const refused = await start(base, "hub", basic("alice"));
      assertEquals(refused.status, 409);
      const conflict = await errorOf(refused);
      assertEquals(conflict.detail.run?.id, other.id);
      assertEquals(conflict.detail.run?.pid, other.pid);
      assertMatch(conflict.message, new RegExp(`run ${other.id}, process ${other.pid} on `));
      const result = await cli;
      assertEquals(result.code, 0, result.stdout + result.stderr);
      proxy.faults.length = 0;
      const done = await finished(base, `/wharf/v1/sync/runs/${other.id}`, basic("alice"));
      assertEquals([done.outcome, done.images, done.unchanged], ["success", 1, 1]);
    });

    await t.step(
      "explicit repositories: push on each suffices, for a login or a token",
      async () => {
        const carol = await start(base, "solo", basic("carol"));
        assertEquals(carol.status, 202);
        const run: Run = await carol.json();
        assertEquals(run.trigger, "http:carol");
        const done = await finished(base, carol.headers.get("location")!, basic("carol"));
        assertEquals([done.outcome, done.images], ["success", 2]);

        const pullOnly = await tokenFor(base, "alice", "repository:mirror/solo/team/app:pull");
        const refused = await start(base, "solo", { authorization: `Bearer ${pullOnly}` });
        assertEquals(refused.status, 403);
        await refused.body?.cancel();
        const push = await tokenFor(base, "alice", "repository:mirror/solo/team/app:pull,push");
        const accepted = await start(base, "solo", { authorization: `Bearer ${push}` });
        assertEquals(accepted.status, 202);
        const again = await finished(base, accepted.headers.get("location")!, basic("alice"));
        assertEquals([again.outcome, again.trigger, again.unchanged], ["success", "http:alice", 2]);
        // A token names repositories, never the hub's glob: it cannot start that mirror.
        const glob = await tokenFor(base, "alice", "repository:mirror/hub/team/app:pull,push");
        const hub = await start(base, "hub", { authorization: `Bearer ${glob}` });
        assertEquals(hub.status, 403);
        await hub.body?.cancel();
      },
    );
  } finally {
    await mirror?.close();
    await proxy.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A non-loopback IPv4 address of this machine, or undefined. */
function outsideAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    ?.address;
}

Deno.test("sync trigger: without logins, loopback callers only", async () => {
  const data = await Deno.makeTempDir({ prefix: "wharf-sync-trigger-open-" });
  const upstream = await startRegistry();
  try {
    const pushed = await pushTestImage(clientFor(upstream.host), "team/app", "1");
    const config = parseConfig(
      {
        data,
        listen: "0.0.0.0:0",
        log: { access: false },
        mirrors: [{ name: "up", upstream: upstream.url, repositories: ["team/app"] }],
      },
      {},
      data,
    );
    const server = await startServer(config, createLogger({ level: "error", write: () => {} }));
    try {
      const port = new URL(server.url).port;
      const local = `http://127.0.0.1:${port}`;
      const outside = outsideAddress();
      if (outside) {
        const refused = await start(`http://${outside}:${port}`, "up");
        assertEquals(refused.status, 403);
        const error = await errorOf(refused);
        assertEquals(error.code, "DENIED");
        assertMatch(error.message, /loopback callers only/);
      } else {
        console.warn("sync_trigger_test: no non-loopback address; only the loopback side tested");
      }
      const accepted = await start(local, "up");
      assertEquals(accepted.status, 202);
      const done = await finished(local, accepted.headers.get("location")!, {});
      assertEquals([done.outcome, done.trigger, done.images], ["success", "http", 1]);
      assertEquals(await digestOf(local, "team/app", "1"), pushed.digest);
    } finally {
      await server.shutdown();
    }
  } finally {
    await upstream.close();
    await Deno.remove(data, { recursive: true });
  }
});
