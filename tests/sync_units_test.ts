/**
 * Mirroring pieces in isolation: tag selection (regex, semver range, newest N), companion
 * tags, platforms, name mapping, the config schema, schedules, the progress line; then
 * `onlyVerified` against a real upstream (a real signature check, not presence) and the access
 * rule of `GET /wharf/v1/sync`.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { startRegistry, writeHtpasswd } from "./harness.ts";
import { clientFor, makeKeys, pushTestImage, signImage } from "./sync_fixtures.ts";
import { ConfigError, parseConfig } from "../src/config/load.ts";
import { createLogger } from "../src/log/logger.ts";
import {
  companionSubject,
  isGlob,
  localRepository,
  platformSelected,
  selectTags,
} from "../src/sync/filters.ts";
import { runMirror } from "../src/sync/engine.ts";
import { progressLine } from "../src/sync/progress.ts";
import { intervalSeconds, scheduleProblem, tickClock } from "../src/sync/scheduler.ts";
import { openWharf } from "../src/wharf.ts";

const filter = (extra: Record<string, unknown> = {}) => ({ include: [], exclude: [], ...extra });

Deno.test("sync filters: regex, semver range, newest N, companions", () => {
  const tags = [
    "1.0.0",
    "1.2",
    "v1.2.3",
    "1.9.0-rc1",
    "2.0.0",
    "latest",
    "dev",
    "sha256-" +
    "a".repeat(64) + ".sig",
    "sha256-" + "b".repeat(64),
  ];
  assertEquals(selectTags(tags, filter({ semver: ">=1.2 <2" })), ["v1.2.3", "1.2"]);
  assertEquals(selectTags(tags, filter({ include: ["^v?1\\."], exclude: ["rc"] })), [
    "v1.2.3",
    "1.2",
    "1.0.0",
  ]);
  assertEquals(selectTags(tags, filter({ newest: 2 })), ["2.0.0", "1.9.0-rc1"]);
  assertEquals(selectTags(["b", "a", "c"], filter({ newest: 2 })), ["c", "b"]);
  assertEquals(companionSubject(`sha256-${"a".repeat(64)}.att`), `sha256:${"a".repeat(64)}`);
  assertEquals(companionSubject("latest"), null);
  assertEquals(platformSelected({ os: "linux", architecture: "arm64" }, ["linux/amd64"]), false);
  assertEquals(
    platformSelected({ os: "linux", architecture: "arm", variant: "v7" }, ["linux/arm/v7"]),
    true,
  );
  assertEquals(platformSelected(undefined, []), true);
  assertEquals(
    localRepository("library/alpine", { stripPrefix: "library/", prefix: "hub/" }),
    "hub/alpine",
  );
  assertEquals([isGlob("team/*"), isGlob("team/app")], [true, false]);
});

Deno.test("sync config: defaults, schedules and clear errors", () => {
  const config = parseConfig(
    {
      mirrors: [{ name: "hub", upstream: "https://registry.example", repositories: ["a/b"] }],
    },
    {},
    "test",
  );
  const mirror = config.mirrors[0];
  assertEquals(mirror.concurrency, 4);
  assertEquals(mirror.retries.delay, 500);
  assertEquals(mirror.timeout, 60_000);
  assertEquals(mirror.attachments, { cosign: true, referrers: true, atomic: true });
  const bad = (m: Record<string, unknown>) =>
    assertThrows(() =>
      parseConfig(
        {
          mirrors: [{ name: "x", upstream: "https://r.example", repositories: ["a"], ...m }],
        },
        {},
        "test",
      ), ConfigError);
  bad({ schedule: "every tuesday" });
  bad({ tags: { semver: "not a range" } });
  bad({ onlyVerified: true });
  bad({ tls: { verify: false } });
  bad({ upstream: "https://r.example/some/path" });
  assertEquals(intervalSeconds("30m"), 1800);
  assertEquals(intervalSeconds("*/5 * * * *"), null);
  assertEquals(scheduleProblem("0 3 * * *"), null);
  assertEquals(mirror.lease, 30_000);
  bad({ lease: "10ms" });
  // Ticks are named alike by every process: interval multiples since the epoch, cron times.
  const every = tickClock("30s");
  assertEquals(every(Date.UTC(2030, 0, 1, 3, 0, 12, 500)), Date.UTC(2030, 0, 1, 3, 0, 30));
  assertEquals(every(Date.UTC(2030, 0, 1, 3, 0, 30)), Date.UTC(2030, 0, 1, 3, 1, 0));
  const nightly = tickClock("0 3 * * *");
  assertEquals(nightly(Date.UTC(2030, 0, 1, 2, 59, 59, 990)), Date.UTC(2030, 0, 1, 3));
  assertEquals(nightly(Date.UTC(2030, 0, 1, 3)), Date.UTC(2030, 0, 2, 3));
  assertMatch(
    progressLine({ mirror: "m", done: 5, total: 10, bytes: 2e6, startedAt: 0 }, 1000),
    /m \[#{12}-{12}\] 5\/10 images {2}2.0 MB {2}2.0 MB\/s/,
  );
});

Deno.test("sync onlyVerified: only images whose signature verifies with the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-verified-" });
  const upstream = await startRegistry();
  try {
    const up = clientFor(upstream.host);
    const good = await makeKeys(dir, "good");
    const other = await makeKeys(dir, "other");
    const signed = await pushTestImage(up, "app/x", "signed");
    await signImage(up, "app/x", signed, good.key, `${upstream.host}/app/x`);
    await pushTestImage(up, "app/x", "unsigned");
    const foreign = await pushTestImage(up, "app/x", "foreign");
    await signImage(up, "app/x", foreign, other.key, `${upstream.host}/app/x`);
    // A signature layer copied from another image: valid signature, wrong digest claim.
    const replayed = await pushTestImage(up, "app/x", "replayed");
    const sig = await up.getManifest("app/x", `${signed.digest.replace(":", "-")}.sig`);
    await up.putManifest(
      "app/x",
      `${replayed.digest.replace(":", "-")}.sig`,
      sig!.bytes,
      sig!.mediaType,
    );
    const config = parseConfig(
      {
        data: join(dir, "data"),
        mirrors: [{
          name: "verified",
          upstream: upstream.url,
          repositories: ["app/x"],
          onlyVerified: true,
          keys: [good.publicPath],
        }],
      },
      {},
      "test",
    );
    const wharf = await openWharf(config, createLogger({ level: "error", write: () => {} }));
    try {
      const report = await runMirror(
        { registry: wharf.registry, log: wharf.log },
        config.mirrors[0],
      );
      assertEquals(report.outcome, "success", report.errors.join("\n"));
      assertEquals([report.images, report.skipped], [1, 3]);
      const tags = (await wharf.registry.metadata.listTags("app/x", { limit: 100 })).items;
      assertEquals(tags, ["sha256-" + signed.digest.slice(7) + ".sig", "signed"]);
    } finally {
      wharf.close();
    }
  } finally {
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sync status route: any login with auth on, refused to anonymous callers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wharf-sync-route-" });
  const registry = await startRegistry({
    config: {
      auth: {
        htpasswd: await writeHtpasswd(dir, { bob: "bob-pw" }),
        rules: [{ repositories: ["bob/**"], users: ["bob"], actions: ["pull"] }],
      },
    },
  });
  try {
    const anonymous = await fetch(`${registry.url}/wharf/v1/sync`);
    assertEquals(anonymous.status, 401);
    assertMatch(anonymous.headers.get("www-authenticate") ?? "", /^Bearer realm=/);
    await anonymous.body?.cancel();
    const bob = await fetch(`${registry.url}/wharf/v1/sync`, {
      headers: { authorization: `Basic ${btoa("bob:bob-pw")}` },
    });
    assertEquals(bob.status, 200);
    assertEquals(await bob.json(), { mirrors: [], runs: [] });
  } finally {
    await registry.close();
    await Deno.remove(dir, { recursive: true });
  }
});
