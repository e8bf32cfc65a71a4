/**
 * htpasswd files with bcrypt entries (as `htpasswd -B` writes them): verifying logins, with a
 * short cache since one bcrypt check costs about 100 ms, and editing the file for
 * `wharf user add|passwd|remove`.
 * @module
 */
import bcrypt from "bcryptjs";
import { createHash, timingSafeEqual } from "node:crypto";
import { dirname } from "node:path";

const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
const USER = /^[^:\s]{1,128}$/;
const CACHE_MS = 5 * 60_000;

/** `user → bcrypt hash`, in file order. */
export type HtpasswdEntries = Map<string, string>;

/** Parses htpasswd text; non-bcrypt entries are refused with the line number. */
export function parseHtpasswd(text: string): HtpasswdEntries {
  const entries: HtpasswdEntries = new Map();
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !BCRYPT.test(hash)) {
      throw new Error(`htpasswd line ${i + 1}: expected "user:<bcrypt hash>" (htpasswd -B)`);
    }
    entries.set(user, hash);
  });
  return entries;
}

/** Renders entries as htpasswd text. */
export function formatHtpasswd(entries: HtpasswdEntries): string {
  return [...entries].map(([user, hash]) => `${user}:${hash}\n`).join("");
}

/** Checks user names before they reach the file. */
export function assertUserName(user: string): void {
  if (!USER.test(user)) throw new Error(`invalid user name "${user}"`);
}

/** Verifies passwords against an htpasswd file, re-reading it when it changes. */
export class Htpasswd {
  #path: string;
  #entries: HtpasswdEntries = new Map();
  #mtime = -1;
  #cache = new Map<string, { key: Buffer; until: number }>();

  constructor(path: string) {
    this.#path = path;
  }

  /** Loads the file; throws with a readable message when it is missing or malformed. */
  async load(): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.#path);
    } catch (err) {
      throw new Error(`cannot read htpasswd file ${this.#path}: ${(err as Error).message}`);
    }
    const mtime = info.mtime?.getTime() ?? 0;
    if (mtime === this.#mtime) return;
    this.#entries = parseHtpasswd(await Deno.readTextFile(this.#path));
    this.#mtime = mtime;
    this.#cache.clear();
  }

  /** True when `password` is the user's. Unknown users cost the same bcrypt time. */
  async verify(user: string, password: string): Promise<boolean> {
    await this.load().catch(() => {}); // keep the last good entries if the file is mid-edit
    const hash = this.#entries.get(user);
    const key = createHash("sha256").update(`${user}\0${password}`).digest();
    const cached = this.#cache.get(user);
    if (hash && cached && cached.until > Date.now() && timingSafeEqual(cached.key, key)) {
      return true;
    }
    const ok = await bcrypt.compare(password, hash ?? DUMMY_HASH);
    if (ok && hash) this.#cache.set(user, { key, until: Date.now() + CACHE_MS });
    return ok && hash !== undefined;
  }
}

// A valid hash of a random password, so that unknown users take as long as known ones.
const DUMMY_HASH = "$2b$10$XwcHoxQUnRmjc/gYtV9BreyLe1QMz8KYtFm09LC2nOiCqrQNSKHTq";

/** Adds or replaces a user's password in the file (created if absent), atomically. */
export async function setPassword(path: string, user: string, password: string): Promise<void> {
  assertUserName(user);
  if (password === "") throw new Error("password must not be empty");
  const entries = await readEntries(path);
  entries.set(user, await bcrypt.hash(password, 10));
  await writeEntries(path, entries);
}

/** Removes a user; throws when absent. */
export async function removeUser(path: string, user: string): Promise<void> {
  const entries = await readEntries(path);
  if (!entries.delete(user)) throw new Error(`no user "${user}" in ${path}`);
  await writeEntries(path, entries);
}

/** Names of the users in a file. */
export async function listUsers(path: string): Promise<string[]> {
  return [...(await readEntries(path)).keys()];
}

async function readEntries(path: string): Promise<HtpasswdEntries> {
  try {
    return parseHtpasswd(await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return new Map();
    throw err;
  }
}

async function writeEntries(path: string, entries: HtpasswdEntries): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, formatHtpasswd(entries), { mode: 0o600 });
  await Deno.rename(temp, path);
}
