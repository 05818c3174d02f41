import type Database from 'better-sqlite3';

/** A value a store query takes (`?` placeholders, in order). */
export type SqlValue = string | number | null | Uint8Array;

/**
 * The world store's read side, whichever database holds it. Queries are written once in the SQL
 * both SQLite and PostgreSQL read (`?` placeholders, double-quoted aliases, `ON CONFLICT` upserts);
 * rows come back with plain numbers (64-bit integers as numbers; they stay below 2^53) and blobs as
 * `Uint8Array`. Calls are synchronous: SQLite reads on the calling thread, PostgreSQL blocks it
 * while its thread asks the server (`postgres/postgresDb.ts`).
 */
export interface StoreDb {
  /** The first row, or undefined. */
  get<T>(sql: string, ...params: SqlValue[]): T | undefined;
  all<T>(sql: string, ...params: SqlValue[]): T[];
  /** The first column of the first row, or undefined. */
  value(sql: string, ...params: SqlValue[]): unknown;
  /** The rows one at a time where the database can stream them. */
  iterate<T>(sql: string, ...params: SqlValue[]): Iterable<T>;
  /** Bytes the store occupies, for reporting. */
  sizeBytes(): number;
  close(): void;
}

/** Keys per `IN (…)` list in `dataByKey` (well under SQLite's limit on parameters). */
const KEYS_PER_QUERY = 500;

/**
 * `data` of the rows whose key is in `keys`, by `keyOf(key)`: `sql` selects `key` and `data` and
 * ends with `IN`; a few hundred keys go to one query (on PostgreSQL each query is a round trip).
 */
export function dataByKey(
  db: StoreDb,
  sql: string,
  params: readonly SqlValue[],
  keys: readonly SqlValue[],
  keyOf: (key: unknown) => string | number,
): Map<string | number, Uint8Array> {
  const found = new Map<string | number, Uint8Array>();
  for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
    const batch = keys.slice(i, i + KEYS_PER_QUERY);
    const rows = db.all<{ key: unknown; data: Uint8Array }>(
      `${sql} (${batch.map(() => '?').join(', ')})`,
      ...params,
      ...batch,
    );
    for (const row of rows) found.set(keyOf(row.key), row.data);
  }
  return found;
}

/** The read side on a better-sqlite3 connection; statements are prepared once per SQL text. */
export class SqliteDb implements StoreDb {
  private readonly statements = new Map<string, Database.Statement>();
  /** `value`'s statements: the same SQL, answering its first column only. */
  private readonly plucked = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  private statement(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.statement(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  value(sql: string, ...params: SqlValue[]): unknown {
    let st = this.plucked.get(sql);
    if (!st) {
      st = this.db.prepare(sql).pluck();
      this.plucked.set(sql, st);
    }
    return st.get(...params);
  }

  iterate<T>(sql: string, ...params: SqlValue[]): Iterable<T> {
    // Its own statement: a prepared statement cannot run again while one of its iterators is open.
    return this.db.prepare(sql).iterate(...params) as Iterable<T>;
  }

  sizeBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    return pages * pageSize;
  }

  close(): void {
    this.db.close();
  }
}
