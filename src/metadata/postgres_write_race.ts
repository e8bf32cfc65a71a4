/**
 * Keeps the process alive through a known `npm:postgres@3.4.9` race: when the server closes a
 * connection while a small write is queued behind `setImmediate`, the queued `nextWrite` runs
 * on a null socket and throws from the timer callback, where no caller can catch it, so the
 * whole process dies (porsager/postgres#1154, #1208; seen here when PostgreSQL stops under
 * concurrent pushes). The queries of that connection were already rejected (CONNECTION_CLOSED).
 * @module
 */

let installed = false;

/** True for the driver's null-socket TypeError thrown from its write timer. */
export function isPostgresWriteRace(error: unknown): boolean {
  return error instanceof TypeError &&
    error.message.includes("reading 'write'") &&
    /nextWrite[^\n]*postgres[^\n]*connection\.js/.test(error.stack ?? "");
}

/**
 * Installs, once per process, a handler that swallows exactly that error (and calls
 * `onRace`); every other uncaught error still ends the process as before.
 */
export function survivePostgresWriteRace(onRace: (error: TypeError) => void = () => {}): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("error", (event) => {
    if (!isPostgresWriteRace(event.error)) return;
    event.preventDefault();
    onRace(event.error);
  });
}
