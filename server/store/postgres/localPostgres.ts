import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's PostgreSQL 15 programs (`apt-get install postgresql`). */
const BIN = '/usr/lib/postgresql/15/bin';

/** Whether this machine has Debian's PostgreSQL server programs. */
export const hasLocalPostgres = (): boolean => existsSync(join(BIN, 'pg_ctl'));

/** PostgreSQL refuses to run as root: as root its programs run as the `postgres` user Debian made. */
function run(cmd: string, args: string[]): void {
  const [file, argv] =
    process.getuid?.() === 0
      ? ['runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args]]
      : [join(BIN, cmd), args];
  try {
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`${cmd} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

/**
 * A PostgreSQL server of this machine's, for trying the clustered mode and for tests: its data in
 * `dir` (created with `initdb` the first time, trust authentication, loopback only), listening on
 * 127.0.0.1:`port`. Returns the URL of its `postgres` database and how to stop it.
 */
export function startLocalPostgres(
  dir: string,
  port: number,
  opts: { fsync?: boolean } = {},
): { url: string; stop: () => void } {
  if (!hasLocalPostgres())
    throw new Error(`PostgreSQL is not installed (${BIN}): apt-get install postgresql`);
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) {
    const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const data = join(dir, 'data');
  if (!existsSync(join(data, 'PG_VERSION')))
    try {
      run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    } catch (e) {
      const asRoot = process.getuid?.() === 0;
      throw new Error(
        `${(e as Error).message}${asRoot ? ` (as root PostgreSQL runs as the user postgres: every folder above ${dir} must let it through)` : ''}`,
      );
    }
  const settings = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1'];
  if (opts.fsync === false) settings.push('-c fsync=off');
  run('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'log'), '-o', settings.join(' '), 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
  };
}
