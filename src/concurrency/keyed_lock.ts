/**
 * Per-key mutual exclusion within the process: appends to one upload session are serialised,
 * and upload completion and garbage collection take the lock of a blob digest, so that GC never
 * deletes bytes that a commit is linking.
 * @module
 */

/** Async locks by key. */
export class KeyedLock {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` once every earlier task holding `key` has finished. */
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
}
