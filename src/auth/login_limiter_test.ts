import { assertEquals } from "../../tests/assert.ts";
import { LoginLimiter } from "./login_limiter.ts";

Deno.test("login limiter: free tries, then doubling delays, reset on success", () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < 3; i++) limiter.failed("10.0.0.1");
  assertEquals(limiter.delayFor("10.0.0.1"), 250);
  limiter.failed("10.0.0.1");
  assertEquals(limiter.delayFor("10.0.0.1"), 500);
  for (let i = 0; i < 20; i++) limiter.failed("10.0.0.1");
  assertEquals(limiter.delayFor("10.0.0.1"), 8000);
  assertEquals(limiter.delayFor("10.0.0.2"), 0);
  limiter.succeeded("10.0.0.1");
  assertEquals(limiter.delayFor("10.0.0.1"), 0);
});
