import { assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import { ConfigError, parseConfig } from "./load.ts";

Deno.test("parseConfig fills embedded defaults", () => {
  const config = parseConfig({}, {}, "test");
  assertEquals(config.listen, "0.0.0.0:5000");
  assertEquals(config.data, "./data");
  assertEquals(config.registry.automaticMount, true);
  assertEquals(config.storage.driver, "filesystem");
});

Deno.test("parseConfig: overrides win over the file", () => {
  const config = parseConfig({ listen: "127.0.0.1:1" }, { listen: "127.0.0.1:2" }, "test");
  assertEquals(config.listen, "127.0.0.1:2");
});

Deno.test("parseConfig names every problem in one line", () => {
  const err = assertThrows(
    () => parseConfig({ listen: "nope", storage: { driver: "s4" }, bogus: 1 }, {}, "f.yaml"),
    ConfigError,
  );
  assertMatch(err.message, /^config f\.yaml: /);
  assertMatch(err.message, /listen: /);
  assertMatch(err.message, /storage\.driver/);
  assertMatch(err.message, /bogus/);
  assertEquals(err.message.includes("\n"), false);
});
