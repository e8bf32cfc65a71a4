/**
 * What the processes of one registry share beyond content: exclusive locks (blob digests,
 * upload sessions, garbage collection), values created once and read by all (the token signing
 * key) and failure counters (login rate limits). {@link LocalCoordination} serves one process
 * on one data directory; `PostgresCoordination` serves every process sharing a database.
 * @module
 */
import { join } from "node:path";
import { KeyedLock, type Locks } from "../concurrency/keyed_lock.ts";

/** Counters of recent failures by key (a remote address), forgotten after a quiet window. */
export interface FailureCounts {
  /** Records a failure of `key`; returns how many there were, counting this one. */
  add(key: string, windowMs: number): Promise<number>;
  /** Failures of `key` with no quiet gap of `windowMs` since (0 when none). */
  count(key: string, windowMs: number): Promise<number>;
  /** Forgets `key`'s failures. */
  clear(key: string): Promise<void>;
}

/** Shared locks, values and counters of one registry. */
export interface Coordination {
  /** Locks held across every process sharing the stores. */
  readonly locks: Locks;
  /** Failure counters shared by every process. */
  readonly failures: FailureCounts;
  /**
   * The value stored under `name`; when there is none yet, stores `init()` first. Processes
   * racing to create it all get the one value that was stored first.
   */
  sharedValue(name: string, init: () => string): Promise<string>;
  /**
   * Claims run `tick` (e.g. a schedule's firing time in seconds) of job `name`: true for
   * exactly one caller per tick, and false for any tick not later than one already claimed,
   * so a job every process schedules runs once per tick.
   */
  claim(name: string, tick: number): Promise<boolean>;
}

const MAX_TRACKED = 50_000;

/** Failure counters in memory. */
export class MemoryFailureCounts implements FailureCounts {
  #entries = new Map<string, { count: number; last: number }>();

  add(key: string, windowMs: number): Promise<number> {
    const now = Date.now();
    const entry = this.#entries.get(key);
    const fresh = !entry || now - entry.last > windowMs;
    if (!entry && this.#entries.size >= MAX_TRACKED) this.#prune(windowMs);
    const count = fresh ? 1 : entry.count + 1;
    this.#entries.set(key, { count, last: now });
    return Promise.resolve(count);
  }

  count(key: string, windowMs: number): Promise<number> {
    const entry = this.#entries.get(key);
    return Promise.resolve(!entry || Date.now() - entry.last > windowMs ? 0 : entry.count);
  }

  clear(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  #prune(windowMs: number): void {
    const cutoff = Date.now() - windowMs;
    for (const [key, entry] of this.#entries) {
      if (entry.last < cutoff) this.#entries.delete(key);
    }
    if (this.#entries.size >= MAX_TRACKED) this.#entries.clear();
  }
}

/**
 * Coordination of a single process: in-process locks, counters in memory, shared values as
 * files (mode 0600) in the data directory, e.g. `<data>/token-signing-key.pem`.
 */
export class LocalCoordination implements Coordination {
  readonly locks: Locks = new KeyedLock();
  readonly failures: FailureCounts = new MemoryFailureCounts();
  readonly #dataDir: string;
  readonly #claimed = new Map<string, number>();

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
  }

  async sharedValue(name: string, init: () => string): Promise<string> {
    const path = join(this.#dataDir, name);
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const temp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(temp, init(), { mode: 0o600 });
    try {
      // A hard link never replaces: a process that lost the race reads the winner's value.
      await Deno.link(temp, path);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    } finally {
      await Deno.remove(temp);
    }
    return await Deno.readTextFile(path);
  }

  claim(name: string, tick: number): Promise<boolean> {
    if ((this.#claimed.get(name) ?? -Infinity) >= tick) return Promise.resolve(false);
    this.#claimed.set(name, tick);
    return Promise.resolve(true);
  }
}
