/**
 * Slows down repeated failed logins from one address: after a few failures every further
 * answer to that address waits, doubling up to a cap, until a quiet period has passed. The
 * counts live in {@link FailureCounts}, shared by every process of the registry.
 * @module
 */
import { type FailureCounts, MemoryFailureCounts } from "../coordination/coordination.ts";

const FREE_FAILURES = 3;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8_000;
const FORGET_AFTER_MS = 15 * 60_000;

/** The wait before answering an address with `failures` recent failed logins. */
export function loginDelay(failures: number): number {
  const over = failures - FREE_FAILURES;
  return over < 0 ? 0 : Math.min(BASE_DELAY_MS * 2 ** over, MAX_DELAY_MS);
}

/** Failed-login bookkeeping per remote address. */
export class LoginLimiter {
  readonly #counts: FailureCounts;

  constructor(counts: FailureCounts = new MemoryFailureCounts()) {
    this.#counts = counts;
  }

  /** How long to wait before answering a login attempt from `address`. */
  async delayFor(address: string): Promise<number> {
    return loginDelay(await this.#counts.count(`login:${address}`, FORGET_AFTER_MS));
  }

  /** Records a failed login. */
  async failed(address: string): Promise<void> {
    await this.#counts.add(`login:${address}`, FORGET_AFTER_MS);
  }

  /** Forgets failures after a successful login. */
  async succeeded(address: string): Promise<void> {
    await this.#counts.clear(`login:${address}`);
  }
}
