import pg from 'pg';

/**
 * The PostgreSQL connection of one store thread. 64-bit integers (chunk keys, keyframe ids, counts)
 * come back as numbers, as SQLite gives them: every value the store writes stays below 2^53.
 */
pg.types.setTypeParser(pg.types.builtins.INT8, (text: string) => {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`integer ${text} from PostgreSQL is beyond 2^53`);
  return n;
});

/**
 * A pool of one connection: it reconnects by itself after the server went away. A connection that
 * does not open in `connectTimeoutMs` fails the query waiting for it; the server cancels a
 * statement that runs `statementTimeoutMs`.
 */
export function openPool(
  url: string,
  applicationName: string,
  connectTimeoutMs: number,
  statementTimeoutMs?: number,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    ...(statementTimeoutMs === undefined ? {} : { statement_timeout: statementTimeoutMs }),
    max: 1,
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: applicationName,
  });
  // An idle connection that breaks (the server restarted) is replaced at the next query.
  pool.on('error', () => {});
  return pool;
}
