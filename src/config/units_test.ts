import { assertEquals } from "../../tests/assert.ts";
import { parseDuration, parseSize } from "./units.ts";

Deno.test("sizes and durations", () => {
  assertEquals(parseSize("512MiB"), 512 * 2 ** 20);
  assertEquals(parseSize("10GB"), 10e9);
  assertEquals(parseSize(1024), 1024);
  assertEquals(parseSize("1.5KiB"), 1536);
  assertEquals(parseSize("ten"), null);
  assertEquals(parseSize("5XB"), null);
  assertEquals(parseDuration("24h"), 86_400_000);
  assertEquals(parseDuration("90"), 90_000);
  assertEquals(parseDuration(30), 30_000);
  assertEquals(parseDuration("7d"), 7 * 86_400_000);
  assertEquals(parseDuration("soon"), null);
});
