import { assertEquals } from "../../tests/assert.ts";
import { numberPlaceholders } from "./placeholders.ts";

Deno.test("placeholders: each ? becomes $n in order", () => {
  assertEquals(
    numberPlaceholders("INSERT INTO t (a, b, c) VALUES (?, ?,?)"),
    "INSERT INTO t (a, b, c) VALUES ($1, $2,$3)",
  );
  assertEquals(numberPlaceholders("SELECT 1"), "SELECT 1");
  assertEquals(
    numberPlaceholders("SELECT * FROM t WHERE a=? LIMIT ? OFFSET ?"),
    "SELECT * FROM t WHERE a=$1 LIMIT $2 OFFSET $3",
  );
});

Deno.test("placeholders: string literals, quoted names and comments keep their ?", () => {
  const cases: [string, string][] = [
    ["SELECT '?' , ?", "SELECT '?' , $1"],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    ["SELECT '', ?", "SELECT '', $1"],
    [
      `SELECT "odd?name", "a""?" FROM t WHERE x = ?`,
      `SELECT "odd?name", "a""?" FROM t WHERE x = $1`,
    ],
    ["SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"],
    ["SELECT ? -- trailing?", "SELECT $1 -- trailing?"],
    ["SELECT /* ? /* nested ? */ still ? */ ?", "SELECT /* ? /* nested ? */ still ? */ $1"],
    ["SELECT E'\\'?', ?", "SELECT E'\\'?', $1"],
    // Outside E'…' a backslash is an ordinary character: the literal ends at the next quote.
    ["SELECT '\\', ?", "SELECT '\\', $1"],
    ["SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"],
    ["SELECT $fn$ it's ? $fn$, ?", "SELECT $fn$ it's ? $fn$, $1"],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?"],
  ];
  for (const [sql, expected] of cases) assertEquals(numberPlaceholders(sql), expected, sql);
});

Deno.test("placeholders: ?NNN keeps its number and a bare ? continues after the largest", () => {
  assertEquals(numberPlaceholders("SELECT ?2, ?1, ?"), "SELECT $2, $1, $3");
  assertEquals(numberPlaceholders("SELECT ?, ?1, ?"), "SELECT $1, $1, $2");
});

Deno.test("placeholders: casts, and $ inside a name, are no quotes", () => {
  assertEquals(
    numberPlaceholders("SELECT ?::text, a$b$ FROM t WHERE x = ?"),
    "SELECT $1::text, a$b$ FROM t WHERE x = $2",
  );
});
