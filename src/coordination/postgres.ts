/**
 * {@link Coordination} for several processes on one PostgreSQL database. Locks are leases:
 * a row per held key with an expiry on the database's clock, renewed while its task runs and
 * deleted when it ends, so a killed process's locks lapse after {@link LEASE_TTL_MS} (at once
 * for a process of the same host that no longer runs) and no
 * connection is held while a task streams a blob. Waiting for a lock polls with backoff; a
 * process first queues behind its own holders of the key, so it never polls against itself.
 * @module
 */
import { hostname } from "node:os";
import type postgres from "postgres";
import { KeyedLock, type Locks } from "../concurrency/keyed_lock.ts";
import { processAlive } from "../concurrency/process_alive.ts";
import { guardPostgres } from "../metadata/postgres.ts";
import { RegistryError } from "../oci/errors.ts";
import type { Coordination, FailureCounts } from "./coordination.ts";

/** How long a lease lives without renewal by default (a killed holder's lock lapses then). */
export const LEASE_TTL_MS = 30_000;
/** Longest wait for a lock before the request fails with 503. */
const WAIT_LIMIT_MS = 10 * 60_000;
const SCHEMA_LOCK = 0x5768617267;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS wharf_leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
  );
  CREATE TABLE IF NOT EXISTS wharf_shared_values (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS wharf_failures (
    key text COLLATE "C" PRIMARY KEY,
    count integer NOT NULL,
    last_at bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS wharf_failures_by_last ON wharf_failures(last_at);
  CREATE TABLE IF NOT EXISTS wharf_claims (
    name text COLLATE "C" PRIMARY KEY,
    tick bigint NOT NULL
  );
`;

/** Coordination through tables of the metadata database. */
export class PostgresCoordination implements Coordination {
  readonly locks: Locks;
  readonly failures: FailureCounts;
  readonly #sql: postgres.Sql;

  private constructor(sql: postgres.Sql, leaseTtlMs: number) {
    this.#sql = sql;
    this.locks = new LeaseLocks(sql, leaseTtlMs);
    this.failures = new PostgresFailureCounts(sql);
  }

  /** Creates the tables (once, under an advisory lock) on the pool `sql`. */
  static async open(
    sql: postgres.Sql,
    options: { leaseTtlMs?: number } = {},
  ): Promise<PostgresCoordination> {
    await guardPostgres(sql, () =>
      sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await tx.unsafe(SCHEMA);
      }));
    return new PostgresCoordination(sql, options.leaseTtlMs ?? LEASE_TTL_MS);
  }

  async sharedValue(name: string, init: () => string): Promise<string> {
    const [existing] = await guardPostgres(
      this.#sql,
      () => this.#sql`SELECT value FROM wharf_shared_values WHERE name = ${name}`,
    );
    if (existing) return existing.value as string;
    await guardPostgres(
      this.#sql,
      () =>
        this.#sql`INSERT INTO wharf_shared_values (name, value) VALUES (${name}, ${init()})
                ON CONFLICT (name) DO NOTHING`,
    );
    const [row] = await guardPostgres(
      this.#sql,
      () => this.#sql`SELECT value FROM wharf_shared_values WHERE name = ${name}`,
    );
    return row.value as string;
  }

  async claim(name: string, tick: number): Promise<boolean> {
    const rows = await guardPostgres(this.#sql, () =>
      this.#sql`
        INSERT INTO wharf_claims AS c (name, tick) VALUES (${name}, ${tick})
        ON CONFLICT (name) DO UPDATE SET tick = excluded.tick WHERE c.tick < excluded.tick
        RETURNING tick`);
    return rows.length === 1;
  }
}

/** Locks as lease rows in `wharf_leases`. */
class LeaseLocks implements Locks {
  readonly #sql: postgres.Sql;
  readonly #local = new KeyedLock();
  readonly #owner = `${hostname()}:${Deno.pid}`;
  readonly #ttl: number;

  constructor(sql: postgres.Sql, ttlMs: number) {
    this.#sql = sql;
    this.#ttl = ttlMs;
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.#local.run(key, async () => {
      const holder = await this.#acquire(key, true);
      return await this.#hold(key, holder!, task);
    });
  }

  async tryRun<T>(
    key: string,
    task: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const outcome = await this.#local.tryRun(key, async () => {
      const holder = await this.#acquire(key, false);
      if (holder === null) return { ran: false as const };
      return { ran: true as const, value: await this.#hold(key, holder, task) };
    });
    return outcome.ran ? outcome.value : outcome;
  }

  /** Takes the lease, polling with backoff when `wait`; returns the holder id or null. */
  async #acquire(key: string, wait: boolean): Promise<string | null> {
    const holder = `${this.#owner}:${crypto.randomUUID()}`;
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (let delay = 5;; delay = Math.min(delay * 2, 250)) {
      const rows = await guardPostgres(this.#sql, () =>
        this.#sql`
          INSERT INTO wharf_leases AS l (name, holder, expires_at)
          VALUES (${key}, ${holder}, clock_timestamp() + ${this.#ttl} * interval '1 millisecond')
          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE l.expires_at < clock_timestamp()
          RETURNING holder`);
      if (rows.length === 1) return holder;
      if (await this.#takeFromDeadProcess(key, holder)) return holder;
      if (!wait) return null;
      if (Date.now() > deadline) {
        throw new RegistryError("UNAVAILABLE", `lock ${key} is held by another process`, {
          status: 503,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
    }
  }

  /**
   * Takes `key` at once when its holder was a process of this host that no longer runs (killed
   * mid-task), instead of waiting for the lease to lapse.
   */
  async #takeFromDeadProcess(key: string, holder: string): Promise<boolean> {
    const [row] = await guardPostgres(
      this.#sql,
      () => this.#sql`SELECT holder FROM wharf_leases WHERE name = ${key}`,
    );
    if (!row) return false;
    const [host, pid] = (row.holder as string).split(":");
    if (host !== hostname() || !/^\d+$/.test(pid ?? "") || processAlive(Number(pid))) return false;
    const taken = await guardPostgres(this.#sql, () =>
      this.#sql`
        UPDATE wharf_leases
        SET holder = ${holder}, expires_at = clock_timestamp() + ${this.#ttl} * interval '1 millisecond'
        WHERE name = ${key} AND holder = ${row.holder as string}
        RETURNING holder`);
    return taken.length === 1;
  }

  /** Runs `task` renewing the lease meanwhile, then releases it. */
  async #hold<T>(key: string, holder: string, task: () => Promise<T>): Promise<T> {
    const renew = setInterval(() => {
      this.#sql`
        UPDATE wharf_leases
        SET expires_at = clock_timestamp() + ${this.#ttl} * interval '1 millisecond'
        WHERE name = ${key} AND holder = ${holder}`.catch(() => {});
    }, this.#ttl / 3);
    try {
      return await task();
    } finally {
      clearInterval(renew);
      // A failed release only delays the next holder until the lease expires.
      await this.#sql`DELETE FROM wharf_leases WHERE name = ${key} AND holder = ${holder}`
        .catch(() => {});
    }
  }
}

/** Failure counters in `wharf_failures`. */
class PostgresFailureCounts implements FailureCounts {
  readonly #sql: postgres.Sql;
  #adds = 0;

  constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  async add(key: string, windowMs: number): Promise<number> {
    const now = Date.now();
    if (++this.#adds % 1000 === 0) {
      await guardPostgres(
        this.#sql,
        () => this.#sql`DELETE FROM wharf_failures WHERE last_at < ${now - windowMs}`,
      );
    }
    const [row] = await guardPostgres(this.#sql, () =>
      this.#sql`
        INSERT INTO wharf_failures AS f (key, count, last_at) VALUES (${key}, 1, ${now})
        ON CONFLICT (key) DO UPDATE
        SET count = CASE WHEN f.last_at < ${now - windowMs} THEN 1 ELSE f.count + 1 END,
            last_at = excluded.last_at
        RETURNING count`);
    return Number(row.count);
  }

  async count(key: string, windowMs: number): Promise<number> {
    const [row] = await guardPostgres(this.#sql, () =>
      this.#sql`SELECT count FROM wharf_failures
                WHERE key = ${key} AND last_at >= ${Date.now() - windowMs}`);
    return row ? Number(row.count) : 0;
  }

  async clear(key: string): Promise<void> {
    await guardPostgres(this.#sql, () => this.#sql`DELETE FROM wharf_failures WHERE key = ${key}`);
  }
}
