/**
 * Plugin SQL is written with SQLite's `?` placeholders; PostgreSQL numbers them (`$1`, `$2`, …).
 * @module
 */

const IDENTIFIER_CHAR = /[A-Za-z0-9_$]/;
const DOLLAR_TAG = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/;

/**
 * Rewrites the `?` placeholders of `sql` as `$1, $2, …` in order; `?NNN` becomes `$NNN` and,
 * as in SQLite, a later bare `?` takes the number after the largest one so far. A `?` inside a
 * string literal (`'…'`, `E'…'`, `$tag$…$tag$`), a quoted name (`"…"`) or a comment stays as
 * it is. PostgreSQL's jsonb operators `?`, `?|` and `?&` are therefore unavailable: use
 * `jsonb_exists(…)` and its siblings.
 *
 * @example
 * ```ts
 * numberPlaceholders("SELECT '?' AS q, a FROM t WHERE a = ? AND b = ?");
 * // "SELECT '?' AS q, a FROM t WHERE a = $1 AND b = $2"
 * ```
 */
export function numberPlaceholders(sql: string): string {
  let out = "";
  let last = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    let end: number;
    if (c === "?") {
      const digits = /^\d+/.exec(sql.slice(i + 1))?.[0];
      last = digits ? Math.max(last, Number(digits)) : last + 1;
      out += `$${digits ?? last}`;
      i += 1 + (digits?.length ?? 0);
      continue;
    } else if (c === "'") {
      end = quotedEnd(sql, i, backslashEscapes(sql, i));
    } else if (c === '"') {
      end = quotedEnd(sql, i, false);
    } else if (c === "-" && next === "-") {
      const newline = sql.indexOf("\n", i);
      end = newline < 0 ? sql.length : newline + 1;
    } else if (c === "/" && next === "*") {
      end = blockCommentEnd(sql, i);
    } else if (c === "$" && !IDENTIFIER_CHAR.test(sql[i - 1] ?? " ")) {
      const tag = DOLLAR_TAG.exec(sql.slice(i))?.[0];
      const close = tag ? sql.indexOf(tag, i + tag.length) : -1;
      end = !tag ? i + 1 : close < 0 ? sql.length : close + tag.length;
    } else {
      end = i + 1;
    }
    out += sql.slice(i, end);
    i = end;
  }
  return out;
}

/** Whether the string literal at `start` is an `E'…'` one, where a backslash escapes. */
function backslashEscapes(sql: string, start: number): boolean {
  return /[eE]/.test(sql[start - 1] ?? "") && !IDENTIFIER_CHAR.test(sql[start - 2] ?? " ");
}

/** The index after the quoted text at `start`; a doubled quote is part of the text. */
function quotedEnd(sql: string, start: number, backslash: boolean): number {
  const quote = sql[start];
  for (let i = start + 1; i < sql.length; i++) {
    if (backslash && sql[i] === "\\") {
      i++;
    } else if (sql[i] === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i++;
    }
  }
  return sql.length;
}

/** The index after the (possibly nested) block comment at `start`. */
function blockCommentEnd(sql: string, start: number): number {
  let depth = 0;
  for (let i = start; i < sql.length - 1; i++) {
    if (sql[i] === "/" && sql[i + 1] === "*") {
      depth++;
      i++;
    } else if (sql[i] === "*" && sql[i + 1] === "/") {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return sql.length;
}
