import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { digestOf, toDigest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { FilesystemBlobStore } from "./filesystem.ts";

function stream(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

function failing(part: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(part);
      controller.error(new Error("connection reset"));
    },
  });
}

async function text(body: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(body).text();
}

Deno.test("filesystem store: chunked upload, commit, read and ranges", async () => {
  const root = await Deno.makeTempDir();
  try {
    const store = await FilesystemBlobStore.open(root);
    await store.startUpload("s1");
    const a = new TextEncoder().encode("hello ");
    const b = new TextEncoder().encode("world");
    assertEquals(await store.appendUpload("s1", stream(a), { offset: 0 }), { size: 6 });
    const outOfOrder = await assertRejects(
      () => store.appendUpload("s1", stream(b), { offset: 3 }),
      RegistryError,
    );
    assertEquals(outOfOrder.status, 416);
    await store.appendUpload("s1", stream(b), { offset: 6 });
    const digest = digestOf(new TextEncoder().encode("hello world"));
    assertEquals(await store.stat(digest), null);
    assertEquals(await store.commitUpload("s1", digest), { digest, size: 11 });
    assertEquals(await text(await store.read(digest)), "hello world");
    assertEquals(await text(await store.read(digest, { start: 6, end: 10 })), "world");
    assertEquals(await store.listUploads(), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("filesystem store: a failed append leaves the session as it was", async () => {
  const root = await Deno.makeTempDir();
  try {
    const store = await FilesystemBlobStore.open(root);
    await store.startUpload("s2");
    await store.appendUpload("s2", stream(new TextEncoder().encode("abc")));
    await assertRejects(() => store.appendUpload("s2", failing(new Uint8Array(5000))), Error);
    assertEquals((await store.uploadState("s2")).size, 3);
    const short = await assertRejects(
      () => store.appendUpload("s2", stream(new Uint8Array(10)), { expectedLength: 20 }),
      RegistryError,
    );
    assertEquals(short.code, "SIZE_INVALID");
    assertEquals((await store.uploadState("s2")).size, 3);
    const digest = digestOf(new TextEncoder().encode("abc"));
    const wrong = await assertRejects(
      () => store.commitUpload("s2", toDigest(`sha256:${"0".repeat(64)}`)),
      RegistryError,
    );
    assertEquals(wrong.code, "DIGEST_INVALID");
    assertEquals(await store.stat(toDigest(`sha256:${"0".repeat(64)}`)), null);
    // A store opened afresh (as after a restart) re-hashes the session from disk.
    const reopened = await FilesystemBlobStore.open(root);
    assertEquals(await reopened.commitUpload("s2", digest), { digest, size: 3 });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("filesystem store: sha512 digests and unknown sessions", async () => {
  const root = await Deno.makeTempDir();
  try {
    const store = await FilesystemBlobStore.open(root);
    await store.startUpload("s3");
    const bytes = new TextEncoder().encode("sha512 content");
    await store.appendUpload("s3", stream(bytes));
    const digest = digestOf(bytes, "sha512");
    assertEquals(await store.commitUpload("s3", digest), { digest, size: bytes.length });
    assertEquals(await text(await store.read(digest)), "sha512 content");
    const unknown = await assertRejects(() => store.uploadState("../etc"), RegistryError);
    assertEquals(unknown.code, "BLOB_UPLOAD_UNKNOWN");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
