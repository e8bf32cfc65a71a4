import { assertEquals } from "../../tests/assert.ts";
import { LocalCoordination } from "./coordination.ts";

Deno.test("local coordination: a shared value is a 0600 file created once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = new LocalCoordination(dir);
    const two = new LocalCoordination(dir);
    let made = 0;
    const values = await Promise.all(
      [one, two, one].map((c) => c.sharedValue("key.pem", () => `value-${++made}`)),
    );
    assertEquals(new Set(values).size, 1);
    assertEquals(await Deno.readTextFile(`${dir}/key.pem`), values[0]);
    assertEquals((await Deno.stat(`${dir}/key.pem`)).mode! & 0o777, 0o600);
    assertEquals([...Deno.readDirSync(dir)].length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
