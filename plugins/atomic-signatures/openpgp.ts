/**
 * Just enough OpenPGP (RFC 4880) to look inside an "atomic" container signature: a signed
 * message (optionally compressed) holding a literal data packet with the JSON payload and a
 * signature packet naming the key. Nothing is verified here.
 * @module
 */
import { inflateRawSync, inflateSync } from "node:zlib";

/** What a signed message says, unverified. */
export interface SignedMessage {
  /** The literal data: the signature payload JSON bytes. */
  literal: Uint8Array;
  /** Issuer key id (16 uppercase hex), from the signature or one-pass signature packet. */
  keyId: string | null;
  /** Issuer fingerprint (uppercase hex), when the signature carries it. */
  fingerprint: string | null;
  /** Signature creation time (Unix seconds), when present. */
  created: number | null;
}

/** Bytes that are not an OpenPGP signed message this reader understands. */
export class OpenPgpError extends Error {
  override name = "OpenPgpError";
}

const MAX_LITERAL = 4 * 1024 * 1024;
const TAG_SIGNATURE = 2;
const TAG_ONE_PASS = 4;
const TAG_COMPRESSED = 8;
const TAG_LITERAL = 11;

/**
 * Reads a binary OpenPGP signed message (as `gpg --sign` writes it). Throws
 * {@link OpenPgpError} for malformed packets, unsupported compression (BZip2) or a message
 * without literal data.
 *
 * @example
 * ```ts
 * const { literal, keyId } = readSignedMessage(bytes);
 * JSON.parse(new TextDecoder().decode(literal)).critical.type; // "atomic container signature"
 * ```
 */
export function readSignedMessage(bytes: Uint8Array): SignedMessage {
  const message: SignedMessage = {
    literal: new Uint8Array(),
    keyId: null,
    fingerprint: null,
    created: null,
  };
  let hasLiteral = false;
  const visit = (data: Uint8Array, depth: number) => {
    for (const { tag, body } of packets(data)) {
      if (tag === TAG_COMPRESSED) {
        if (depth > 2) throw new OpenPgpError("compressed packets nested too deeply");
        visit(decompress(body), depth + 1);
      } else if (tag === TAG_LITERAL) {
        if (body.length < 6) throw new OpenPgpError("literal data packet too short");
        const start = 2 + body[1] + 4;
        if (start > body.length) throw new OpenPgpError("literal data packet too short");
        message.literal = body.subarray(start);
        hasLiteral = true;
      } else if (tag === TAG_ONE_PASS) {
        if (body.length >= 12) message.keyId ??= hex(body.subarray(4, 12));
      } else if (tag === TAG_SIGNATURE) {
        readSignature(body, message);
      }
    }
  };
  visit(bytes, 0);
  if (!hasLiteral) throw new OpenPgpError("no literal data: not a signed message");
  return message;
}

/** Splits a packet stream; partial body lengths are joined. */
function* packets(data: Uint8Array): Generator<{ tag: number; body: Uint8Array }> {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > data.length) throw new OpenPgpError("truncated packet");
  };
  while (pos < data.length) {
    const header = data[pos++];
    if ((header & 0x80) === 0) throw new OpenPgpError("not an OpenPGP packet");
    if ((header & 0x40) === 0) {
      // Old format: tag in bits 5-2, length type in bits 1-0.
      const tag = (header >> 2) & 0x0f;
      const lengthType = header & 0x03;
      let length: number;
      if (lengthType === 3) {
        length = data.length - pos;
      } else {
        const size = [1, 2, 4][lengthType];
        need(size);
        length = 0;
        for (let i = 0; i < size; i++) length = length * 256 + data[pos++];
      }
      need(length);
      yield { tag, body: data.subarray(pos, pos + length) };
      pos += length;
      continue;
    }
    const tag = header & 0x3f;
    const chunks: Uint8Array[] = [];
    for (;;) {
      need(1);
      const first = data[pos++];
      let length: number;
      let partial = false;
      if (first < 192) {
        length = first;
      } else if (first < 224) {
        need(1);
        length = ((first - 192) << 8) + data[pos++] + 192;
      } else if (first === 255) {
        need(4);
        length = ((data[pos] << 24) >>> 0) + (data[pos + 1] << 16) + (data[pos + 2] << 8) +
          data[pos + 3];
        pos += 4;
      } else {
        length = 1 << (first & 0x1f);
        partial = true;
      }
      need(length);
      chunks.push(data.subarray(pos, pos + length));
      pos += length;
      if (!partial) break;
    }
    yield { tag, body: chunks.length === 1 ? chunks[0] : concat(chunks) };
  }
}

function decompress(body: Uint8Array): Uint8Array {
  const algorithm = body[0];
  const data = body.subarray(1);
  const options = { maxOutputLength: MAX_LITERAL + 64 * 1024 };
  try {
    if (algorithm === 0) return data;
    if (algorithm === 1) return new Uint8Array(inflateRawSync(data, options));
    if (algorithm === 2) return new Uint8Array(inflateSync(data, options));
  } catch (err) {
    throw new OpenPgpError(`compressed data unreadable: ${(err as Error).message}`);
  }
  throw new OpenPgpError(`unsupported compression algorithm ${algorithm}`);
}

function readSignature(body: Uint8Array, out: SignedMessage): void {
  const version = body[0];
  if (version === 3 && body.length >= 15) {
    out.created ??= readUint32(body, 3);
    out.keyId ??= hex(body.subarray(7, 15));
    return;
  }
  if (version !== 4) return;
  let pos = 4;
  for (let area = 0; area < 2 && pos + 2 <= body.length; area++) {
    const length = (body[pos] << 8) + body[pos + 1];
    pos += 2;
    const end = Math.min(pos + length, body.length);
    while (pos < end) {
      let size = body[pos++];
      if (size >= 255) {
        size = readUint32(body, pos);
        pos += 4;
      } else if (size >= 192) {
        size = ((size - 192) << 8) + body[pos++] + 192;
      }
      const type = body[pos] & 0x7f;
      const value = body.subarray(pos + 1, Math.min(pos + size, end));
      if (type === 2 && value.length === 4) out.created ??= readUint32(value, 0);
      if (type === 16 && value.length === 8) out.keyId ??= hex(value);
      if (type === 33 && value.length > 1) {
        out.fingerprint ??= hex(value.subarray(1));
        out.keyId ??= hex(value.subarray(value.length - 8));
      }
      pos += size;
    }
    pos = end;
  }
}

function readUint32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos] << 24) >>> 0) + (bytes[pos + 1] << 16) + (bytes[pos + 2] << 8) +
    bytes[pos + 3];
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
