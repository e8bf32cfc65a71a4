/**
 * Whether a process of this host still runs, for taking over what a killed process held.
 * @module
 */

/** True unless no process `pid` exists on this host (a process of another user counts). */
export function processAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    // SIGCONT is harmless to a running process; the kernel answers ESRCH when there is none.
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}
