/**
 * A 2 GiB layer streams in and out of a real server with bounded memory: the server's peak
 * resident set grows by far less than the blob.
 */
import { createHash } from "node:crypto";
import { assertEquals, assertOk } from "./assert.ts";
import { startRegistry } from "./harness.ts";
import { randomBytes } from "./oci_client.ts";

const CHUNK = 1 << 20;
const CHUNKS = 2048; // 2 GiB
const MAX_GROWTH_MIB = 160;

function peakRssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

Deno.test("a 2 GiB blob streams through with constant memory", async () => {
  const registry = await startRegistry();
  try {
    const pattern = randomBytes(CHUNK);
    const expected = createHash("sha256");
    for (let i = 0; i < CHUNKS; i++) expected.update(pattern);
    const digest = `sha256:${expected.digest("hex")}`;

    // Warm the server up so that its baseline includes the code paths used below.
    const warm = await fetch(`${registry.url}/v2/`);
    await warm.body?.cancel();
    const baseline = peakRssMiB(registry.process.pid);

    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === CHUNKS) return controller.close();
        sent++;
        controller.enqueue(pattern.slice());
      },
    });
    const start = await fetch(`${registry.url}/v2/big/layer/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    const location = new URL(start.headers.get("location")!, registry.url);
    const patch = await fetch(location, { method: "PATCH", body });
    await patch.body?.cancel();
    assertEquals(patch.status, 202);
    assertEquals(patch.headers.get("range"), `0-${CHUNK * CHUNKS - 1}`);
    const done = new URL(patch.headers.get("location")!, registry.url);
    done.searchParams.set("digest", digest);
    const put = await fetch(done, { method: "PUT" });
    await put.body?.cancel();
    assertEquals(put.status, 201);

    const got = await fetch(`${registry.url}/v2/big/layer/blobs/${digest}`);
    assertEquals(got.headers.get("content-length"), String(CHUNK * CHUNKS));
    const actual = createHash("sha256");
    let received = 0;
    for await (const chunk of got.body!) {
      actual.update(chunk);
      received += chunk.length;
    }
    assertEquals(received, CHUNK * CHUNKS);
    assertEquals(`sha256:${actual.digest("hex")}`, digest);

    const growth = peakRssMiB(registry.process.pid) - baseline;
    console.log(`server peak RSS grew by ${growth.toFixed(1)} MiB for a 2048 MiB blob`);
    assertOk(growth < MAX_GROWTH_MIB, `peak RSS grew by ${growth.toFixed(1)} MiB`);
  } finally {
    await registry.close();
  }
});
