/**
 * Reads a password for CLI commands: from an environment variable, else from a terminal
 * prompt without echo, else from the first line of standard input.
 * @module
 */

/** The password in the first set variable of `envNames`, or asked for. */
export async function readPassword(envNames: string[], question: string): Promise<string> {
  for (const name of envNames) {
    const value = Deno.env.get(name);
    if (value !== undefined) return value;
  }
  if (Deno.stdin.isTerminal()) return await promptHidden(question);
  const text = await new Response(Deno.stdin.readable).text();
  return text.split("\n", 1)[0].replace(/\r$/, "");
}

async function promptHidden(question: string): Promise<string> {
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(question));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buffer = new Uint8Array(1);
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null || buffer[0] === 13 || buffer[0] === 10) break;
      if (buffer[0] === 3) throw new Error("interrupted");
      if (buffer[0] === 127) bytes.pop();
      else bytes.push(buffer[0]);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
