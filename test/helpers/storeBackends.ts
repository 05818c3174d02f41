import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { numbered } from '../../server/store/postgres/sqlText.ts';
import type { SqlValue } from '../../server/store/storeDb.ts';
import { testPostgres } from './postgres.ts';

/** A database the world store runs on, for suites that run against each. */
export interface StoreBackend {
  readonly name: 'SQLite' | 'PostgreSQL';
  /** A new, empty store's location (a file path or a database URL). */
  fresh(): Promise<string>;
  /** Runs one statement on a store's database directly, past the store (to damage or inspect rows). */
  raw<T = Record<string, unknown>>(location: string, sql: string, ...params: SqlValue[]): Promise<T[]>;
}

const sqlite: StoreBackend = {
  name: 'SQLite',
  fresh: async () => join(mkdtempSync(join(tmpdir(), 'spatia-store-')), 'w.sqlite'),
  raw: async <T>(location: string, sql: string, ...params: SqlValue[]) => {
    const db = new Database(location);
    try {
      const st = db.prepare(sql);
      if (st.reader) return st.all(...params) as T[];
      st.run(...params);
      return [];
    } finally {
      db.close();
    }
  },
};

/**
 * SQLite always, and PostgreSQL where one runs (`.ci/run` starts it; elsewhere Debian's binaries
 * start one for the file): `describe.each(backends)`. `stop` lets PostgreSQL go (afterAll).
 */
export async function storeBackends(): Promise<{ backends: StoreBackend[]; stop: () => Promise<void> }> {
  const server = await testPostgres();
  if (!server) {
    console.warn('PostgreSQL is not installed here: the store suites run on SQLite only');
    return { backends: [sqlite], stop: async () => {} };
  }
  const postgres: StoreBackend = {
    name: 'PostgreSQL',
    fresh: () => server.database(),
    raw: async <T>(location: string, sql: string, ...params: SqlValue[]) => {
      const client = new pg.Client({ connectionString: location });
      await client.connect();
      try {
        return (await client.query(numbered(sql), params)).rows as T[];
      } finally {
        await client.end();
      }
    },
  };
  return { backends: [sqlite, postgres], stop: () => server.stop() };
}
