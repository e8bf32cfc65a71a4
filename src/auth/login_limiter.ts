/**
 * Slows down repeated failed logins from one address: after a few failures every further
 * answer to that address waits, doubling up to a cap, until a quiet period has passed.
 * @module
 */

const FREE_FAILURES = 3;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_TRACKED = 50_000;

/** Failed-login bookkeeping per remote address. */
export class LoginLimiter {
  #failures = new Map<string, { count: number; last: number }>();

  /** How long to wait before answering a login attempt from `address`. */
  delayFor(address: string): number {
    const entry = this.#failures.get(address);
    if (!entry || Date.now() - entry.last > FORGET_AFTER_MS) return 0;
    const over = entry.count - FREE_FAILURES;
    return over < 0 ? 0 : Math.min(BASE_DELAY_MS * 2 ** over, MAX_DELAY_MS);
  }

  /** Records a failed login. */
  failed(address: string): void {
    const entry = this.#failures.get(address);
    const fresh = !entry || Date.now() - entry.last > FORGET_AFTER_MS;
    if (this.#failures.size >= MAX_TRACKED && !entry) this.#prune();
    this.#failures.set(address, { count: fresh ? 1 : entry.count + 1, last: Date.now() });
  }

  /** Forgets failures after a successful login. */
  succeeded(address: string): void {
    this.#failures.delete(address);
  }

  #prune(): void {
    const cutoff = Date.now() - FORGET_AFTER_MS;
    for (const [address, entry] of this.#failures) {
      if (entry.last < cutoff) this.#failures.delete(address);
    }
    if (this.#failures.size >= MAX_TRACKED) this.#failures.clear();
  }
}
