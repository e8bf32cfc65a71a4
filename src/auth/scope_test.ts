import { assertEquals } from "../../tests/assert.ts";
import { formatScope, parseScopes } from "./scope.ts";

Deno.test("parseScopes handles several scopes, host:port names and odd input", () => {
  assertEquals(parseScopes("repository:a/b:pull,push registry:catalog:*"), [
    { type: "repository", name: "a/b", actions: ["pull", "push"] },
    { type: "registry", name: "catalog", actions: ["*"] },
  ]);
  assertEquals(parseScopes("repository:localhost:5000/a:pull")[0].name, "localhost:5000/a");
  assertEquals(parseScopes("garbage  :x"), []);
  assertEquals(
    formatScope({ type: "repository", name: "a", actions: ["pull", "push"] }),
    "repository:a:pull,push",
  );
});
