import { workerData } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import type pg from 'pg';
import { fencedMessage, rowBytes, rowOf, WRITE_SQL } from '../storeSql.ts';
import {
  ACKED,
  CLOSED,
  FAILED,
  FENCED,
  type FromWorker,
  type ToWorker,
  WAIT_START_FRAC,
  WAIT_START_S,
  type WriteOp,
  type WriterData,
} from '../writeBatch.ts';
import { openPool } from './pgPool.ts';
import { numbered } from './sqlText.ts';

/**
 * The world store's writer thread on PostgreSQL: the protocol of `storeWriter.ts` (one batch per
 * transaction, in order, each acknowledged), on one connection that reconnects by itself. A batch
 * that fails (the server went away, a constraint) is rolled back and acknowledged as failed; the
 * store keeps its rows and sends them again with the next commit. The "lock wait" the store reports
 * is how long the batch in progress has run (row locks and a slow server both show there).
 */

/** Each statement once per connection: PostgreSQL parses it the first time only. */
const statement = (name: keyof typeof WRITE_SQL, values: unknown[]): pg.QueryConfig => ({
  name: `spatia_${name}`,
  text: numbered(WRITE_SQL[name]),
  values,
});

async function applyBatch(
  client: pg.PoolClient,
  ops: readonly WriteOp[],
  failedSessions: Set<string>,
  deflate: (op: WriteOp & { raw: Uint8Array }) => Uint8Array,
): Promise<number> {
  let bytes = 0;
  for (const op of ops) {
    switch (op.t) {
      case 'world':
      case 'chunk':
      case 'edit':
        await client.query(statement(op.t, rowOf(op)));
        bytes += rowBytes(op);
        break;
      case 'keyframe': {
        const d = deflate(op);
        await client.query(statement('keyframe', rowOf(op, d)));
        bytes += rowBytes(op, d);
        break;
      }
      case 'blob':
        if ((await client.query(statement('hasBlob', [op.hash]))).rowCount === 0) {
          const d = deflate(op);
          await client.query(statement('blob', rowOf(op, d)));
          bytes += rowBytes(op, d);
        }
        break;
      case 'session':
        for (const id of op.keyframeIds)
          if ((await client.query(statement('hasKeyframe', [op.worldId, id]))).rowCount === 0)
            throw new Error(`keyframe ${id} of world "${op.worldId}" is not stored`);
        await client.query(statement('session', rowOf(op)));
        bytes += rowBytes(op);
        break;
      case 'clip':
      case 'frame':
        if (failedSessions.has(op.session)) break;
        await client.query(statement(op.t, rowOf(op)));
        bytes += rowBytes(op);
        break;
      case 'end':
        if (!failedSessions.has(op.session)) await client.query(statement('end', rowOf(op)));
        break;
      case 'checkpoint':
        break; // PostgreSQL checkpoints by itself
      case 'fence': {
        // FOR UPDATE: a concurrent commit of the world (another node's) waits for this transaction.
        const row = (
          await client.query<{ lease_epoch: number }>(
            'SELECT lease_epoch FROM worlds WHERE id = $1 FOR UPDATE',
            [op.world],
          )
        ).rows[0];
        if (row && row.lease_epoch > op.epoch)
          throw new Error(`${FENCED} ${fencedMessage(op.world, row.lease_epoch, op.epoch)}`);
        await client.query(statement('setLeaseEpoch', rowOf(op)));
        break;
      }
    }
  }
  return bytes;
}

function serve(data: WriterData): void {
  if (data.target.kind !== 'postgres') throw new Error('the PostgreSQL writer was given a SQLite store');
  const state = new Int32Array(data.shared);
  const pool = openPool(data.target.url, 'spatia-store-writer');
  const failedSessions = new Set<string>();
  const deflated = new WeakMap<WriteOp, Uint8Array>();
  const deflate = (op: WriteOp & { raw: Uint8Array }): Uint8Array => {
    let d = deflated.get(op);
    if (!d) {
      d = deflateRawSync(op.raw, { level: 1 });
      deflated.set(op, d);
    }
    return d;
  };
  const ack = (m: FromWorker): void => {
    data.port.postMessage(m);
    Atomics.store(state, ACKED, m.seq);
    Atomics.notify(state, ACKED);
  };
  const queue: { seq: number; ops: WriteOp[] }[] = [];
  let closing = false;
  let running = false;

  const write = async (ops: WriteOp[]): Promise<number> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const bytes = await applyBatch(client, ops, failedSessions, deflate);
      await client.query('COMMIT');
      return bytes;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollback: Error) => {
        broken = rollback; // the connection is gone: the pool drops it
      });
      throw e;
    } finally {
      client.release(broken);
    }
  };

  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    while (queue.length > 0) {
      const batch = queue[0]!;
      const now = Date.now();
      Atomics.store(state, WAIT_START_FRAC, now % 1000);
      Atomics.store(state, WAIT_START_S, Math.floor(now / 1000));
      let result: FromWorker;
      try {
        result = { seq: batch.seq, ok: true, bytes: await write(batch.ops) };
      } catch (e) {
        for (const op of batch.ops) if (op.t === 'session') failedSessions.add(op.id);
        result = { seq: batch.seq, ok: false, error: (e as Error).message, bytes: 0 };
      }
      Atomics.store(state, WAIT_START_S, 0);
      queue.shift();
      ack(result);
    }
    running = false;
    if (closing) {
      await pool.end().catch(() => {});
      Atomics.store(state, CLOSED, 1);
      Atomics.notify(state, CLOSED);
      data.port.close();
    }
  };

  data.port.on('message', (m: ToWorker) => {
    if ('close' in m) closing = true;
    else queue.push(m);
    pump().catch((e: Error) => {
      Atomics.store(state, FAILED, 1);
      Atomics.notify(state, ACKED);
      Atomics.notify(state, CLOSED);
      throw e;
    });
  });
}

if ((workerData as WriterData | undefined)?.kind === 'spatia-store-writer') serve(workerData as WriterData);
