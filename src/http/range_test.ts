import { assertEquals } from "../../tests/assert.ts";
import { parseContentRange, parseRange } from "./range.ts";

Deno.test("parseRange: single ranges, suffixes, open ends and unsatisfiable ones", () => {
  assertEquals(parseRange(null, 10), null);
  assertEquals(parseRange("bytes=0-4", 10), { start: 0, end: 4 });
  assertEquals(parseRange("bytes=5-", 10), { start: 5, end: 9 });
  assertEquals(parseRange("bytes=-3", 10), { start: 7, end: 9 });
  assertEquals(parseRange("bytes=-30", 10), { start: 0, end: 9 });
  assertEquals(parseRange("bytes=2-100", 10), { start: 2, end: 9 });
  assertEquals(parseRange("bytes=10-", 10), "unsatisfiable");
  assertEquals(parseRange("bytes=5-2", 10), "unsatisfiable");
  assertEquals(parseRange("bytes=-0", 10), "unsatisfiable");
  assertEquals(parseRange("bytes=0-1,3-4", 10), null);
  assertEquals(parseRange("items=0-1", 10), null);
});

Deno.test("parseContentRange: spec form and client variants", () => {
  assertEquals(parseContentRange(null), null);
  assertEquals(parseContentRange("0-99"), { start: 0, end: 99 });
  assertEquals(parseContentRange("bytes 100-199/1000"), { start: 100, end: 199 });
  assertEquals(parseContentRange("5-2"), "invalid");
  assertEquals(parseContentRange("abc"), "invalid");
});
