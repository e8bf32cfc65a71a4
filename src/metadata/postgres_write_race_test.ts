import { assertEquals } from "../../tests/assert.ts";
import { isPostgresWriteRace } from "./postgres_write_race.ts";

function error(message: string, stack: string): Error {
  const err = new TypeError(message);
  err.stack = `TypeError: ${message}\n${stack}`;
  return err;
}

Deno.test("only the driver's null-socket write from its timer counts as the race", () => {
  const frame = "    at Immediate.nextWrite (file:///app/node_modules/.deno/postgres@3.4.9/" +
    "node_modules/postgres/src/connection.js:255:22)";
  assertEquals(
    isPostgresWriteRace(error("Cannot read properties of null (reading 'write')", frame)),
    true,
  );
  // The same message from other code, or another error from the driver, is not swallowed.
  assertEquals(
    isPostgresWriteRace(
      error(
        "Cannot read properties of null (reading 'write')",
        "    at nextWrite (file:///app.ts)",
      ),
    ),
    false,
  );
  assertEquals(isPostgresWriteRace(error("x is not a function", frame)), false);
  assertEquals(
    isPostgresWriteRace(new Error("Cannot read properties of null (reading 'write')")),
    false,
  );
});
