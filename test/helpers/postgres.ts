import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { hasLocalPostgres, startLocalPostgres } from '../../server/store/postgres/localPostgres.ts';
import { freePort } from './serverProcess.ts';

/** A PostgreSQL server for a test file: new empty databases on it, and how to let it go. */
export interface TestPostgres {
  /** A new, empty database's URL (dropped by `stop`). */
  database(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The PostgreSQL `.ci/run` started (SPATIA_TEST_POSTGRES_URL, an admin URL), or one started here
 * from Debian's binaries on loopback with its data in a temp folder; undefined (the caller skips,
 * saying why) where neither is there. Under CI a missing PostgreSQL is an error, not a skip.
 */
export async function testPostgres(): Promise<TestPostgres | undefined> {
  let admin = process.env.SPATIA_TEST_POSTGRES_URL;
  let local: { stop: () => void } | undefined;
  let dir: string | undefined;
  if (!admin) {
    if (!hasLocalPostgres()) {
      if (process.env.CI) throw new Error('CI has no PostgreSQL: .ci/run should start it');
      return undefined;
    }
    dir = mkdtempSync(join(tmpdir(), 'spatia-pg-'));
    const server = startLocalPostgres(dir, await freePort(), { fsync: false });
    local = server;
    admin = server.url;
  }
  const created: string[] = [];
  const adminQuery = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    database: async () => {
      const name = `spatia_test_${randomBytes(6).toString('hex')}`;
      await adminQuery(`CREATE DATABASE ${name}`);
      created.push(name);
      const url = new URL(admin!);
      url.pathname = `/${name}`;
      return url.toString();
    },
    stop: async () => {
      if (local && dir) {
        local.stop();
        rmSync(dir, { recursive: true, force: true });
        return;
      }
      for (const name of created) await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * The store a test cluster's nodes share: a new PostgreSQL database where one runs (the clustered
 * mode's store), else a SQLite file in `dir` (nodes on one machine). `stop` lets PostgreSQL go.
 */
export async function clusterStore(
  dir: string,
): Promise<{ location: string; kind: string; stop: () => Promise<void> }> {
  const server = await testPostgres();
  if (!server) {
    console.warn('PostgreSQL is not installed here: the cluster shares a SQLite store');
    return { location: join(dir, 'worlds.sqlite'), kind: 'SQLite', stop: async () => {} };
  }
  return { location: await server.database(), kind: 'PostgreSQL', stop: () => server.stop() };
}
