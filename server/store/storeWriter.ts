import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import {
  isMainThread,
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
  workerData,
} from 'node:worker_threads';
import Database from 'better-sqlite3';
import { CHECK_SQL, fencedMessage, insertSql, rowBytes, rowOf } from './storeSql.ts';
import {
  ACKED,
  acknowledge,
  CLOSED,
  deflateOnce,
  FAILED,
  FENCED,
  type FromWorker,
  type StoreTarget,
  signalClosed,
  type ToWorker,
  WAIT_START_FRAC,
  WAIT_START_S,
  type WriteOp,
  type WriteResult,
  type WriterData,
} from './writeBatch.ts';

/**
 * The world store's writes, off the event loop: the main thread encodes rows and posts them in
 * batches; a worker thread with its own connection writes each batch in one transaction, in
 * order, and acknowledges it. This module is the main thread's end and the SQLite thread; the
 * PostgreSQL thread is `postgres/postgresWriter.ts` (same protocol, `writeBatch.ts`). A batch that meets another connection's write lock waits in the
 * worker (retried every `RETRY_MS`) — the event loop never waits for SQLite's lock. Keyframes and
 * snapshot blobs are deflated in the worker too.
 */

/** A batch that waits for the write lock is retried this often, ms. */
const RETRY_MS = 25;
/** SQLite's busy timeout in the writer thread, ms (kept short so `close` can interrupt a wait). */
const WRITER_BUSY_TIMEOUT_MS = 100;

/** The main thread's end: posts batches, receives acknowledgements. */
export class StoreWriter {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly state: Int32Array;
  private seq = 0;
  private readonly callbacks = new Map<number, (r: WriteResult) => void>();
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  private closed = false;
  /** Set when the writer thread died: nothing more can be written. */
  failure: string | undefined;

  constructor(target: StoreTarget, onFailure: (message: string) => void) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const shared = new SharedArrayBuffer(32);
    this.state = new Int32Array(shared);
    const data: WriterData = { kind: 'spatia-store-writer', target, port: channel.port2, shared };
    this.worker =
      target.kind === 'postgres'
        ? new Worker(new URL('./postgres/threadEntry.mjs', import.meta.url), {
            workerData: { ...data, module: new URL('./postgres/postgresWriter.ts', import.meta.url).href },
            transferList: [channel.port2],
          })
        : sqliteWriterThread(data);
    this.worker.on('error', (e) => {
      this.failure = `the store writer thread failed: ${e.message}`;
      onFailure(this.failure);
      for (const [seq, cb] of this.callbacks) {
        this.callbacks.delete(seq);
        cb({ ok: false, error: this.failure, bytes: 0 });
      }
      this.settle();
    });
    this.port.on('message', (m: FromWorker) => this.handle(m));
    this.worker.unref();
    this.port.unref();
  }

  /** Posts a batch (written in one transaction, after every batch posted before it). */
  write(ops: WriteOp[], done?: (r: WriteResult) => void): void {
    if (this.closed || this.failure) {
      done?.({ ok: false, error: this.failure ?? 'the world store is closed', bytes: 0 });
      return;
    }
    const seq = ++this.seq;
    this.callbacks.set(seq, done ?? (() => {}));
    this.port.postMessage({ seq, ops } satisfies ToWorker);
  }

  /** Handles acknowledgements that arrived, without waiting for the event loop. */
  drain(): void {
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (!m) return;
      this.handle(m.message as FromWorker);
    }
  }

  private handle(m: FromWorker): void {
    const cb = this.callbacks.get(m.seq);
    if (!cb) return;
    this.callbacks.delete(m.seq);
    cb({ ok: m.ok, error: m.error, bytes: m.bytes });
    this.settle();
  }

  private settle(): void {
    if (this.callbacks.size === 0 && this.idle) {
      this.idle.resolve();
      this.idle = undefined;
    }
  }

  /** Batches posted and not yet acknowledged. */
  get pending(): number {
    return this.callbacks.size;
  }

  /** How long the batch at the head has waited for another connection's write lock, ms (0: not waiting). */
  lockWaitMs(): number {
    const s = Atomics.load(this.state, WAIT_START_S);
    if (s === 0) return 0;
    const startMs = s * 1000 + Atomics.load(this.state, WAIT_START_FRAC);
    return Math.max(0, Date.now() - startMs);
  }

  /** Resolves once every batch posted so far is acknowledged. */
  flush(): Promise<void> {
    this.drain();
    if (this.callbacks.size === 0) return Promise.resolve();
    if (!this.idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.idle = { promise, resolve };
    }
    return this.idle.promise;
  }

  /** Blocks (Atomics.wait) until every batch posted so far is acknowledged; false on timeout. */
  flushSync(timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.drain();
      if (this.callbacks.size === 0 || this.failure) return this.callbacks.size === 0;
      if (Atomics.load(this.state, FAILED) === 1) return false;
      const acked = Atomics.load(this.state, ACKED);
      if (acked >= this.seq) continue; // acknowledged: the message is on its way
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.state, ACKED, acked, Math.min(left, 50));
    }
  }

  /** Waits (blocking, up to `timeoutMs`) for the queue, then stops the thread. Returns false if writes were left. */
  close(timeoutMs: number): boolean {
    if (this.closed) return true;
    const flushed = this.failure ? false : this.flushSync(timeoutMs);
    this.closed = true;
    if (!this.failure) {
      this.port.postMessage({ close: true } satisfies ToWorker);
      const deadline = performance.now() + Math.max(1000, timeoutMs);
      while (
        Atomics.load(this.state, CLOSED) === 0 &&
        Atomics.load(this.state, FAILED) === 0 &&
        performance.now() < deadline
      )
        Atomics.wait(this.state, CLOSED, 0, 50);
    }
    this.port.close();
    void this.worker.terminate();
    return flushed;
  }
}

/** The SQLite writer thread: it teaches its loader TypeScript (tsx), then imports this module, which runs the writer. */
function sqliteWriterThread(data: WriterData): Worker {
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  return new Worker(
    `const { workerData } = require('node:worker_threads');
     import(workerData.tsx).then((m) => { m.register(); return import(workerData.module); });`,
    { eval: true, workerData: { ...data, tsx, module: import.meta.url }, transferList: [data.port] },
  );
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** The writer thread: one connection, one batch per transaction, in order. */
function runWriter(data: WriterData): void {
  const state = new Int32Array(data.shared);
  try {
    serve(data, state);
  } catch (e) {
    Atomics.store(state, FAILED, 1);
    Atomics.notify(state, ACKED);
    Atomics.notify(state, CLOSED);
    throw e;
  }
}

function serve(data: WriterData, state: Int32Array): void {
  if (data.target.kind !== 'sqlite') throw new Error('the SQLite writer was given a PostgreSQL store');
  const db = new Database(data.target.path, { fileMustExist: true, timeout: WRITER_BUSY_TIMEOUT_MS });
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const st = {
    world: db.prepare(insertSql('world')),
    chunk: db.prepare(insertSql('chunk')),
    keyframe: db.prepare(insertSql('keyframe')),
    edit: db.prepare(insertSql('edit')),
    blob: db.prepare(insertSql('blob')),
    session: db.prepare(insertSql('session')),
    clip: db.prepare(insertSql('clip')),
    frame: db.prepare(insertSql('frame')),
    hasKeyframe: db.prepare(CHECK_SQL.hasKeyframe).pluck(),
    hasBlob: db.prepare(CHECK_SQL.hasBlob).pluck(),
    end: db.prepare(CHECK_SQL.end),
    leaseEpoch: db.prepare('SELECT lease_epoch FROM worlds WHERE id = ?').pluck(),
    setLeaseEpoch: db.prepare(CHECK_SQL.setLeaseEpoch),
  };
  /** Sessions whose start row failed: their clips and frames are dropped (they would break the batch). */
  const failedSessions = new Set<string>();
  const deflate = deflateOnce();

  const apply = (ops: readonly WriteOp[]): number => {
    let bytes = 0;
    for (const op of ops) {
      switch (op.t) {
        case 'world':
        case 'chunk':
        case 'edit':
          st[op.t].run(...rowOf(op));
          bytes += rowBytes(op);
          break;
        case 'keyframe': {
          const d = deflate(op);
          st.keyframe.run(...rowOf(op, d));
          bytes += rowBytes(op, d);
          break;
        }
        case 'blob':
          if (!st.hasBlob.get(op.hash)) {
            const d = deflate(op);
            st.blob.run(...rowOf(op, d));
            bytes += rowBytes(op, d);
          }
          break;
        case 'session':
          for (const id of op.keyframeIds)
            if (!st.hasKeyframe.get(op.worldId, id))
              throw new Error(`keyframe ${id} of world "${op.worldId}" is not stored`);
          st.session.run(...rowOf(op));
          bytes += rowBytes(op);
          break;
        case 'clip':
        case 'frame':
          if (failedSessions.has(op.session)) break;
          st[op.t].run(...rowOf(op));
          bytes += rowBytes(op);
          break;
        case 'end':
          if (!failedSessions.has(op.session)) st.end.run(...rowOf(op));
          break;
        case 'checkpoint':
          break;
        case 'fence': {
          const stored = st.leaseEpoch.get(op.world) as number | undefined;
          if (stored !== undefined && stored > op.epoch)
            throw new Error(`${FENCED} ${fencedMessage(op.world, stored, op.epoch)}`);
          st.setLeaseEpoch.run(...rowOf(op));
          break;
        }
      }
    }
    return bytes;
  };

  const queue: { seq: number; ops: WriteOp[] }[] = [];
  let closing = false;
  let scheduled = false;
  const schedule = (delayMs: number): void => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(step, delayMs);
  };
  const ack = (m: FromWorker): void => acknowledge(data, state, m);
  const step = (): void => {
    scheduled = false;
    while (queue.length > 0) {
      const batch = queue[0]!;
      try {
        for (const op of batch.ops) if (op.t === 'keyframe' || op.t === 'blob') deflate(op);
        const bytes = db.transaction(() => apply(batch.ops)).immediate();
        for (const op of batch.ops) if (op.t === 'checkpoint') db.pragma('wal_checkpoint(TRUNCATE)');
        Atomics.store(state, WAIT_START_S, 0);
        queue.shift();
        ack({ seq: batch.seq, ok: true, bytes });
      } catch (e) {
        if (isBusy(e)) {
          if (Atomics.load(state, WAIT_START_S) === 0) {
            const now = Date.now();
            Atomics.store(state, WAIT_START_FRAC, now % 1000);
            Atomics.store(state, WAIT_START_S, Math.floor(now / 1000));
          }
          schedule(RETRY_MS);
          return;
        }
        Atomics.store(state, WAIT_START_S, 0);
        queue.shift();
        for (const op of batch.ops) if (op.t === 'session') failedSessions.add(op.id);
        ack({ seq: batch.seq, ok: false, error: (e as Error).message, bytes: 0 });
      }
    }
    if (closing) {
      db.close();
      signalClosed(data, state);
    }
  };
  data.port.on('message', (m: ToWorker) => {
    if ('close' in m) closing = true;
    else queue.push(m);
    if (!scheduled) schedule(0);
  });
}

if (!isMainThread && (workerData as WriterData | undefined)?.kind === 'spatia-store-writer')
  runWriter(workerData as WriterData);
