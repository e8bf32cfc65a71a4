import { assertEquals } from "../../tests/assert.ts";
import { LoginLimiter } from "./login_limiter.ts";

Deno.test("login limiter: free tries, then doubling delays, reset on success", async () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < 3; i++) await limiter.failed("10.0.0.1");
  assertEquals(await limiter.delayFor("10.0.0.1"), 250);
  await limiter.failed("10.0.0.1");
  assertEquals(await limiter.delayFor("10.0.0.1"), 500);
  for (let i = 0; i < 20; i++) await limiter.failed("10.0.0.1");
  assertEquals(await limiter.delayFor("10.0.0.1"), 8000);
  assertEquals(await limiter.delayFor("10.0.0.2"), 0);
  await limiter.succeeded("10.0.0.1");
  assertEquals(await limiter.delayFor("10.0.0.1"), 0);
});
