import { workerData } from 'node:worker_threads';
import type pg from 'pg';
import type { SqlValue } from '../storeDb.ts';
import {
  bulkInsertSql,
  CHECK_SQL,
  fencedMessage,
  insertSql,
  ROWS,
  type RowKind,
  rowBytes,
  rowOf,
} from '../storeSql.ts';
import {
  ACKED,
  acknowledge,
  CLOSED,
  deflateOnce,
  FAILED,
  FENCED,
  type FromWorker,
  signalClosed,
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

/** Ops written as runs of rows, one statement per run. */
const BULK_KINDS = new Set<WriteOp['t']>(['chunk', 'keyframe', 'edit', 'blob', 'clip', 'frame']);
/** A run is cut into statements of at most this many rows (PostgreSQL takes 65535 parameters) or bytes. */
const MAX_BULK_ROWS = 1000;
const MAX_BULK_BYTES = 32 * 2 ** 20;

/** One statement per connection: PostgreSQL parses it the first time only. */
const prepared = (name: string, text: string, values: unknown[]): pg.QueryConfig => ({
  name: `spatia_${name}`,
  text,
  values,
});

/** Upserts rows of one kind, a slice of rows per statement (multi-row VALUES). */
async function upsertRows(client: pg.PoolClient, kind: RowKind, rows: SqlValue[][]): Promise<void> {
  // One statement may not touch a row twice: the last of a key wins, as it would row by row.
  const keyAt = ROWS[kind].key.map((k) => (ROWS[kind].columns as readonly string[]).indexOf(k));
  const byKey = new Map<string, SqlValue[]>();
  for (const row of rows)
    byKey.set(
      keyAt
        .map((i) => {
          const v = row[i];
          return v instanceof Uint8Array ? Buffer.from(v).toString('hex') : String(v);
        })
        .join('\u0000'),
      row,
    );
  const unique = [...byKey.values()];
  for (let start = 0; start < unique.length; ) {
    let end = start;
    let bytes = 0;
    while (end < unique.length && end - start < MAX_BULK_ROWS && (end === start || bytes < MAX_BULK_BYTES)) {
      for (const v of unique[end]!) if (v instanceof Uint8Array) bytes += v.byteLength;
      end++;
    }
    const slice = unique.slice(start, end);
    const text = bulkInsertSql(kind, slice.length);
    // Full slices are prepared once per connection; the last, of any size, is parsed each time.
    await client.query(
      slice.length === MAX_BULK_ROWS
        ? prepared(`bulk_${kind}`, text, slice.flat())
        : { text, values: slice.flat() },
    );
    start = end;
  }
}

async function applyBatch(
  client: pg.PoolClient,
  ops: readonly WriteOp[],
  failedSessions: Set<string>,
  deflate: (op: WriteOp & { raw: Uint8Array }) => Uint8Array,
): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < ops.length; ) {
    const op = ops[i]!;
    if (BULK_KINDS.has(op.t)) {
      // The run of ops of this kind that follows: written together, in the batch's order.
      let end = i;
      while (end < ops.length && ops[end]!.t === op.t) end++;
      let run = ops.slice(i, end);
      i = end;
      if (op.t === 'clip' || op.t === 'frame')
        run = run.filter((o) => !failedSessions.has((o as WriteOp & { session: string }).session));
      if (op.t === 'blob') {
        const hashes = run.map((o) => (o as WriteOp & { t: 'blob' }).hash);
        const stored = new Set(
          (
            await client.query<{ hash: Buffer }>(
              prepared('stored_blobs', 'SELECT hash FROM snapshot_blobs WHERE hash = ANY($1::bytea[])', [
                hashes,
              ]),
            )
          ).rows.map((r) => r.hash.toString('hex')),
        );
        run = run.filter(
          (o) => !stored.has(Buffer.from((o as WriteOp & { t: 'blob' }).hash).toString('hex')),
        );
      }
      if (run.length === 0) continue;
      const rows = run.map((o) => {
        const d = o.t === 'keyframe' || o.t === 'blob' ? deflate(o) : undefined;
        bytes += rowBytes(o, d);
        return rowOf(o, d);
      });
      await upsertRows(client, op.t as RowKind, rows);
      continue;
    }
    i++;
    switch (op.t) {
      case 'world':
        await client.query(prepared('world', numbered(insertSql('world')), rowOf(op)));
        break;
      case 'session':
        for (const id of op.keyframeIds)
          if (
            (await client.query(prepared('has_keyframe', numbered(CHECK_SQL.hasKeyframe), [op.worldId, id])))
              .rowCount === 0
          )
            throw new Error(`keyframe ${id} of world "${op.worldId}" is not stored`);
        await client.query(prepared('session', numbered(insertSql('session')), rowOf(op)));
        bytes += rowBytes(op);
        break;
      case 'end':
        if (!failedSessions.has(op.session))
          await client.query(prepared('end', numbered(CHECK_SQL.end), rowOf(op)));
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
        await client.query(prepared('set_lease_epoch', numbered(CHECK_SQL.setLeaseEpoch), rowOf(op)));
        break;
      }
    }
  }
  return bytes;
}

function serve(data: WriterData): void {
  if (data.target.kind !== 'postgres') throw new Error('the PostgreSQL writer was given a SQLite store');
  const state = new Int32Array(data.shared);
  const pool = openPool(data.target.url, 'spatia-store-writer', 10_000);
  const failedSessions = new Set<string>();
  const deflate = deflateOnce();
  const ack = (m: FromWorker): void => acknowledge(data, state, m);
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
      signalClosed(data, state);
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
