/**
 * Request bodies still being received, so that shutdown can wait for them.
 *
 * Deno 2.9's `server.shutdown()` makes every in-flight request body unreadable at once
 * (denoland/deno#36809, fix pending in #36825): an upload in progress at SIGTERM would fail
 * with 500. So shutdown first stops taking new bodies (503 `UNAVAILABLE`), waits until the
 * bodies already coming in are read, and only then calls `server.shutdown()`, which refuses
 * new connections and lets the remaining handlers finish.
 * @module
 */

/** Counts request bodies being received; see the module doc. */
export class BodyDrain {
  #open = 0;
  #draining = false;
  #waiters: (() => void)[] = [];

  /** True once {@link BodyDrain.drain} was called: new bodies are refused. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Bodies being received now. */
  get open(): number {
    return this.#open;
  }

  /** Registers a body being received; call the returned function (once or more) when done. */
  begin(): () => void {
    this.#open++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#open--;
      if (this.#open === 0) { for (const wake of this.#waiters.splice(0)) wake(); }
    };
  }

  /**
   * Stops new bodies and resolves when the open ones are done, or after `timeoutMs`;
   * true when all were done.
   *
   * @example
   * ```ts
   * await drain.drain(30_000);
   * await server.shutdown();
   * ```
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.#draining = true;
    if (this.#open === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = new Promise<boolean>((resolve) => this.#waiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
