import { assertEquals } from "../../tests/assert.ts";
import { createLogger } from "./logger.ts";

Deno.test("lines below the level are dropped; `with` adds fields to every line", () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "info", write: (line) => lines.push(JSON.parse(line)) });
  log.debug("hidden");
  log.with({ requestId: "r1" }).info("shown", { status: 200 });
  assertEquals(lines.length, 1);
  const { time, ...rest } = lines[0];
  assertEquals(typeof time, "string");
  assertEquals(rest, { level: "info", msg: "shown", requestId: "r1", status: 200 });
});
