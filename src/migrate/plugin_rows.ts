/**
 * The plugins' share of `wharf migrate`: the rows of tables that plugins declare carried
 * (`ctx.db.table(name, { carry: true })`: data that exists nowhere else, such as atomic
 * signatures), and those plugins' artifact index records, copied from the source's plugin
 * database to the target's — SQLite or PostgreSQL at either end. The target's plugins have run
 * their migrations, so their tables exist; a row whose primary key (or another unique
 * constraint) the target holds is skipped, so a second run copies nothing.
 * @module
 */
import { RegistryError } from "../oci/errors.ts";
import type { SqlRow } from "../plugins/api.ts";
import type { PluginStore, TableColumn } from "../plugins/database.ts";
import type { PluginHost } from "../plugins/host.ts";
import type { MigrationFailure, PluginDataReport, TableCounts } from "./report.ts";

/** Rows written per target transaction. */
const BATCH = 500;

/** Options of {@link carryPluginRows}. */
export interface CarryOptions {
  /** Count what would be copied (inserted, then rolled back), keep nothing. */
  dryRun: boolean;
  /** The repositories migrated: rows of a table with a `repository` column are read per one. */
  repositories: string[];
  progress: (line: string) => void;
  fail: (failure: MigrationFailure) => void;
}

/** One table to copy: a carried plugin table, or one plugin's artifact index records. */
interface TableCopy {
  plugin: string;
  /** As the report names it. */
  label: string;
  /** The table's full name; null for the artifact index (shared: only this plugin's rows). */
  table: string | null;
}

/**
 * Copies the carried tables of `target`'s plugins from `source` (null: the source has no plugin
 * database) and fills `report`. Row failures are reported; an unreachable database throws.
 */
export async function carryPluginRows(
  source: PluginStore | null,
  target: PluginHost,
  report: PluginDataReport,
  options: CarryOptions,
): Promise<void> {
  const active = new Set(target.loaded.filter((p) => p.status === "active").map((p) => p.name));
  const carried = target.carriedTables();
  const copies: TableCopy[] = carried.map((c) => ({
    plugin: c.plugin,
    label: c.name,
    table: c.table,
  }));
  for (const plugin of new Set(carried.map((c) => c.plugin))) {
    copies.push({ plugin, label: "artifact index", table: null });
  }
  for (const copy of copies) {
    const counts: TableCounts = { plugin: copy.plugin, table: copy.label, ...zero() };
    report.tables.push(counts);
    if (source) await copyTable(source, target.store, copy, counts, options);
  }
  report.rows = sum(report.tables);
  for (const plugin of source ? await source.pluginsWithTables() : []) {
    if (active.has(plugin)) continue;
    report.notLoaded.push(plugin);
    options.progress(`plugin ${plugin}: in the source, not loaded by the target; not carried`);
  }
}

async function copyTable(
  source: PluginStore,
  target: PluginStore,
  copy: TableCopy,
  counts: TableCounts,
  options: CarryOptions,
): Promise<void> {
  const name = `${copy.plugin}/${copy.label}`;
  const fail = (reason: string, repository = "") =>
    options.fail({ kind: "plugin", repository, table: name, reason });
  const [fromTable, toTable] = [
    copy.table ?? source.artifactTable,
    copy.table ?? target.artifactTable,
  ];
  const from = await source.columns(fromTable);
  if (from === null) return; // the plugin never ran on the source: nothing to carry
  const columns = copyColumns(from, await target.columns(toTable));
  if (typeof columns === "string") return fail(columns);

  const list = columns.map(quote).join(", ");
  const insert = `INSERT INTO ${toTable} (${list}) VALUES (${columns.map(() => "?").join(", ")})
                  ON CONFLICT DO NOTHING`;
  const read = source.database(copy.plugin);
  const write = target.database(copy.plugin);
  const byRepository = columns.includes("repository");
  for (const repository of byRepository ? options.repositories : [null]) {
    const where = [
      ...repository === null ? [] : [["repository", repository]],
      ...copy.table === null ? [["plugin", copy.plugin]] : [],
    ];
    const rows = await read.all(
      `SELECT ${list} FROM ${fromTable}` +
        (where.length ? ` WHERE ${where.map(([c]) => `${quote(c)} = ?`).join(" AND ")}` : ""),
      ...where.map(([, value]) => value),
    );
    let copied = 0;
    for (let i = 0; i < rows.length; i += BATCH) {
      const batch = rows.slice(i, i + BATCH);
      try {
        const inserted = await insertRows(write, insert, columns, batch, options.dryRun);
        copied += inserted;
        counts.present += batch.length - inserted;
      } catch (err) {
        if (err instanceof RegistryError && err.code === "UNAVAILABLE") throw err;
        counts.failed += batch.length;
        fail(
          `${batch.length} rows refused by the target: ${(err as Error).message}`,
          repository ?? "",
        );
      }
    }
    counts.copied += copied;
    if (copied > 0) {
      const where = repository === null ? "" : ` (${repository})`;
      const verb = options.dryRun ? "would copy" : "copied";
      options.progress(`${verb} ${copied} rows of plugin table ${name}${where}`);
    }
  }
}

/**
 * The columns to copy: the source's, less those either database numbers itself (such as the
 * `rowid` identity PostgreSQL has where SQLite's is implicit); or why the table cannot be copied
 * (the target lacks it or a column with data: another version of the plugin).
 */
function copyColumns(from: TableColumn[], to: TableColumn[] | null): string[] | string {
  if (to === null) return "the target has no such table";
  const target = new Map(to.map((c) => [c.name, c]));
  const missing = from.filter((c) => !c.generated && !target.has(c.name)).map((c) => c.name);
  if (missing.length > 0) {
    return `the target's table has no column ${missing.join(", ")} (another plugin version?)`;
  }
  return from.filter((c) => target.has(c.name) && !target.get(c.name)!.generated)
    .map((c) => c.name);
}

/** Inserts `rows` in one transaction; the number inserted. A dry run rolls them back. */
async function insertRows(
  db: ReturnType<PluginStore["database"]>,
  insert: string,
  columns: string[],
  rows: SqlRow[],
  dryRun: boolean,
): Promise<number> {
  try {
    return await db.transaction(async (tx) => {
      let inserted = 0;
      for (const row of rows) inserted += await tx.run(insert, ...columns.map((c) => row[c]));
      if (dryRun) throw new RolledBack(inserted);
      return inserted;
    });
  } catch (err) {
    if (err instanceof RolledBack) return err.inserted;
    throw err;
  }
}

/** Ends a dry run's transaction, carrying what it would have inserted. */
class RolledBack extends Error {
  constructor(readonly inserted: number) {
    super("dry run");
  }
}

function quote(column: string): string {
  return `"${column.replaceAll('"', '""')}"`;
}

function zero() {
  return { copied: 0, present: 0, failed: 0 };
}

function sum(tables: TableCounts[]) {
  const total = zero();
  for (const t of tables) {
    total.copied += t.copied;
    total.present += t.present;
    total.failed += t.failed;
  }
  return total;
}
