import { assertEquals } from "../../tests/assert.ts";
import { compilePolicy } from "./rules.ts";

const policy = compilePolicy({
  groups: { devs: ["bob"] },
  loopbackAnonymous: ["pull"],
  rules: [
    { repositories: ["**"], users: ["alice"], actions: ["*"] },
    { repositories: ["team/*"], groups: ["devs"], actions: ["pull", "push"] },
    { repositories: ["public/**"], anonymous: true, actions: ["pull"] },
    { repositories: ["shared/**"], users: ["*"], actions: ["pull"] },
  ],
});

Deno.test("rules: users, groups, globs and anonymous callers", () => {
  const alice = policy({ user: "alice", loopback: false });
  assertEquals(alice.can("any/thing", "delete"), true);
  const bob = policy({ user: "bob", loopback: false });
  assertEquals(bob.can("team/app", "push"), true);
  assertEquals(bob.can("team/app/deep", "pull"), false); // * stays in one segment
  assertEquals(bob.can("team/app", "delete"), false);
  assertEquals(bob.can("shared/x/y", "pull"), true);
  const anonymous = policy({ user: null, loopback: false });
  assertEquals(anonymous.can("public/a/b", "pull"), true);
  assertEquals(anonymous.can("public/a/b", "push"), false);
  assertEquals(anonymous.can("shared/x", "pull"), false);
  assertEquals(anonymous.can("team/app", "pull"), false);
  const local = policy({ user: null, loopback: true });
  assertEquals(local.can("team/app", "pull"), true);
  assertEquals(local.can("team/app", "push"), false);
});
