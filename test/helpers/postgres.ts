import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './serverProcess.ts';

/** A PostgreSQL server for a test file: new empty databases on it, and how to let it go. */
export interface TestPostgres {
  /** A new, empty database's URL (dropped by `stop`). */
  database(): Promise<string>;
  stop(): Promise<void>;
}

/** Debian's PostgreSQL 15 programs (the `postgresql` package). */
const BIN = '/usr/lib/postgresql/15/bin';

/** PostgreSQL refuses to run as root: as root its programs run as the `postgres` user Debian made. */
function asServerUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/**
 * The PostgreSQL `.ci/run` started (SPATIA_TEST_POSTGRES_URL, an admin URL), or one started here
 * from Debian's binaries on loopback with its data in a temp folder; undefined (the caller skips,
 * saying why) where neither is there. Under CI a missing PostgreSQL is an error, not a skip.
 */
export async function testPostgres(): Promise<TestPostgres | undefined> {
  let admin = process.env.SPATIA_TEST_POSTGRES_URL;
  let dir: string | undefined;
  if (!admin) {
    if (!existsSync(`${BIN}/pg_ctl`)) {
      if (process.env.CI) throw new Error('CI has no PostgreSQL: .ci/run should start it');
      return undefined;
    }
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'spatia-pg-'));
    if (process.getuid?.() === 0) chownSync(dir, uid('postgres'), gid('postgres'));
    const data = join(dir, 'data');
    execFileSync(
      ...asServerUser(`${BIN}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']),
      {
        stdio: 'ignore',
      },
    );
    execFileSync(
      ...asServerUser(`${BIN}/pg_ctl`, [
        '-D',
        data,
        '-w',
        '-l',
        join(dir, 'log'),
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
        'start',
      ]),
      { stdio: 'ignore' },
    );
    admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
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
      if (dir) {
        execFileSync(...asServerUser(`${BIN}/pg_ctl`, ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']), {
          stdio: 'ignore',
        });
        rmSync(dir, { recursive: true, force: true });
        return;
      }
      for (const name of created) await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

const uid = (user: string): number => Number(execFileSync('id', ['-u', user]).toString().trim());
const gid = (user: string): number => Number(execFileSync('id', ['-g', user]).toString().trim());
