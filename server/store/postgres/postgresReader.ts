import { workerData } from 'node:worker_threads';
import pg from 'pg';
import { openPool } from './pgPool.ts';
import { openPostgresSchema } from './postgresSchema.ts';
import {
  ANSWERED,
  READ_CONNECT_TIMEOUT_MS,
  READ_STATEMENT_TIMEOUT_MS,
  type ReaderData,
  type ReaderReply,
  type ReaderRequest,
} from './readProtocol.ts';

/** The PostgreSQL store's read thread (see `readProtocol.ts`). */
/**
 * Whether a failed read says nothing about the data: anything but the server's answer (the
 * connection failed or timed out), a connection exception (08…), the server shutting down (57P…)
 * or a statement timeout (57014).
 */
function unreachable(e: unknown): boolean {
  if (!(e instanceof pg.DatabaseError)) return true;
  const code = e.code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || code === '57014';
}

function serve(data: ReaderData): void {
  const signal = new Int32Array(data.shared);
  const pool = openPool(data.url, 'spatia-store-reader', READ_CONNECT_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS);
  const answer = (reply: ReaderReply): void => {
    data.port.postMessage(reply);
    Atomics.add(signal, ANSWERED, 1);
    Atomics.notify(signal, ANSWERED);
  };
  data.port.on('message', async (m: ReaderRequest) => {
    try {
      if ('close' in m) {
        await pool.end();
        answer({ id: m.id, rows: [] });
        data.port.close();
      } else if ('open' in m) {
        const client = await pool.connect();
        try {
          await openPostgresSchema(client, data.name, m.open.readonly);
        } finally {
          client.release();
        }
        answer({ id: m.id, rows: [] });
      } else {
        const r =
          m.rowMode === 'array'
            ? await pool.query({ text: m.sql, values: m.params, rowMode: 'array' })
            : await pool.query({ text: m.sql, values: m.params });
        answer({ id: m.id, rows: r.rows });
      }
    } catch (e) {
      answer({ id: m.id, error: (e as Error).message, unreachable: unreachable(e) });
    }
  });
}

if ((workerData as ReaderData | undefined)?.kind === 'spatia-postgres-reader')
  serve(workerData as ReaderData);
