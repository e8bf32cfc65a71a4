import { assertEquals, assertOk } from "../../tests/assert.ts";
import { TokenService } from "./tokens.ts";

const options = { issuer: "wharf", service: "wharf", expiresIn: 60 };

Deno.test("tokens: issued tokens verify; tampered, foreign and expired ones do not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/key.pem`, TokenService.generateKey(), { mode: 0o600 });
    const service = await TokenService.load(`${dir}/key.pem`, options);
    const again = await TokenService.load(`${dir}/key.pem`, options);
    const access = [{ type: "repository", name: "a/b", actions: ["pull"] }];
    const { token } = await service.issue("alice", access);
    const claims = await again.verify(token);
    assertEquals(claims?.subject, "alice");
    assertEquals(claims?.access, access);

    const [header, payload, signature] = token.split(".");
    const forged = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    forged.access[0].actions = ["pull", "push"];
    const forgedPayload = btoa(JSON.stringify(forged)).replace(/=+$/, "").replace(/\+/g, "-")
      .replace(/\//g, "_");
    assertEquals(await service.verify(`${header}.${forgedPayload}.${signature}`), null);

    const other = await TokenService.fromPem(TokenService.generateKey(), options, "other");
    assertEquals(await other.verify(token), null);

    const expired = await TokenService.load(`${dir}/key.pem`, { ...options, expiresIn: -20 });
    assertEquals(await service.verify((await expired.issue("alice", access)).token), null);
    assertOk((await Deno.stat(`${dir}/key.pem`)).mode! & 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
