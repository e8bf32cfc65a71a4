/**
 * Per-key mutual exclusion: appends to one upload session are serialised, and upload
 * completion and garbage collection take the lock of a blob digest, so that GC never deletes
 * bytes that a commit is linking. {@link KeyedLock} holds within one process; the PostgreSQL
 * coordination holds across every process sharing the database.
 * @module
 */

/** Exclusive locks by key. */
export interface Locks {
  /** Runs `task` once every earlier task holding `key` has finished. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Runs `task` only if nobody holds `key` now; `{ ran: false }` otherwise. */
  tryRun<T>(key: string, task: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
}

/** Async locks by key, within the process. */
export class KeyedLock implements Locks {
  #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  async tryRun<T>(
    key: string,
    task: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    if (this.#tails.has(key)) return { ran: false };
    return { ran: true, value: await this.run(key, task) };
  }
}
