import { assertEquals } from "../../tests/assert.ts";
import { compilePolicy } from "../auth/rules.ts";
import { destinationPatterns, unwritableDestination } from "./destinations.ts";

const mirror = (repositories: string[], prefix = "", stripPrefix = "") => ({
  repositories,
  destination: { prefix, stripPrefix },
});

Deno.test("destinations: explicit names and globs through prefix and stripPrefix", () => {
  assertEquals(
    destinationPatterns(mirror(["library/alpine", "team/*"], "mirror/hub/", "library/")),
    ["mirror/hub/alpine", "mirror/hub/team/*"],
  );
  // A glob inside the stripped prefix loses it, like its matches do.
  assertEquals(destinationPatterns(mirror(["library/*"], "m/", "library/")), ["m/*"]);
  // Only some matches of `**` start with library/: anything under the prefix.
  assertEquals(destinationPatterns(mirror(["**"], "m/", "library/")), ["m/**"]);
  assertEquals(destinationPatterns(mirror(["li*/x"], "m/", "library/")), ["m/li*/x", "m/**"]);
  assertEquals(destinationPatterns(mirror(["*"])), ["*"]);
});

Deno.test("destinations: push is needed on every repository a mirror may write", () => {
  const policy = compilePolicy({
    groups: {},
    loopbackAnonymous: [],
    rules: [
      { repositories: ["mirror/**"], users: ["all"], actions: ["*"] },
      { repositories: ["mirror/hub/team/*"], users: ["team"], actions: ["push"] },
      { repositories: ["mirror/hub/team/?"], users: ["one-char"], actions: ["push"] },
      { repositories: ["mirror/hub/team/a*"], users: ["a"], actions: ["push"] },
      { repositories: ["mirror/hub/*"], users: ["hub"], actions: ["push"] },
      { repositories: ["mirror/hub/team/app"], users: ["app"], actions: ["push"] },
      { repositories: ["**"], users: ["reader"], actions: ["pull"] },
    ],
  });
  const can = (user: string) => policy({ user, loopback: false });
  const team = mirror(["team/*"], "mirror/hub/");
  assertEquals(unwritableDestination(can("all"), team), undefined);
  assertEquals(unwritableDestination(can("team"), team), undefined);
  for (const partial of ["one-char", "a", "hub", "app", "reader"]) {
    assertEquals(unwritableDestination(can(partial), team), "mirror/hub/team/*", partial);
  }
  // `*` stays in one segment: it does not cover what `**` reaches.
  const deep = mirror(["**"], "mirror/hub/");
  assertEquals(unwritableDestination(can("hub"), deep), "mirror/hub/**");
  assertEquals(unwritableDestination(can("all"), deep), undefined);
  // An explicit repository needs push on that repository only.
  assertEquals(unwritableDestination(can("app"), mirror(["team/app"], "mirror/hub/")), undefined);
  assertEquals(
    unwritableDestination(can("app"), mirror(["team/app", "team/db"], "mirror/hub/")),
    "mirror/hub/team/db",
  );
});
