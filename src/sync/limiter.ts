/**
 * A counting semaphore: at most N tasks at a time.
 * @module
 */

/** Runs tasks with at most `size` in flight. */
export class Limiter {
  #active = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly size: number) {}

  /** Runs `task` when a slot is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.size) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}

/** Maps `items` through `task` with at most `size` in flight; settles every item. */
export async function settleAll<T, R>(
  items: readonly T[],
  size: number,
  task: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const limiter = new Limiter(size);
  return await Promise.allSettled(items.map((item) => limiter.run(() => task(item))));
}
