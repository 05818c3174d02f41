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
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';

/**
 * The world store's writes, off the event loop: the main thread encodes rows and posts them in
 * batches; a worker thread with its own SQLite connection writes each batch in one transaction, in
 * order, and acknowledges it. A batch that meets another connection's write lock waits in the
 * worker (retried every `RETRY_MS`) — the event loop never waits for SQLite's lock. Keyframes and
 * snapshot blobs are deflated in the worker too.
 */

/** One row (or one action) of a write batch. */
export type WriteOp =
  | {
      t: 'world';
      id: string;
      prompt: string;
      seed: number;
      voxelSizeM: number;
      scene: string | null;
      inviteToken: string | null;
      ownerTokenHash: string | null;
      editLocked: number;
      createdAt: string;
    }
  | {
      t: 'chunk';
      world: string;
      key: number;
      cx: number;
      cy: number;
      cz: number;
      voxels: number;
      data: Uint8Array;
    }
  /** `raw`: `encodeKeyframe` bytes; stored deflated. */
  | { t: 'keyframe'; world: string; id: number; x: number; z: number; raw: Uint8Array }
  /** One entry of a world's edit log (written again when it is undone or redone). */
  | {
      t: 'edit';
      world: string;
      seq: number;
      author: string;
      at: string;
      op: string;
      bounds: [number, number, number, number, number, number];
      undone: number;
    }
  /** A content-addressed part of a session's start snapshot; written once per `hash`. */
  | { t: 'blob'; hash: Uint8Array; raw: Uint8Array }
  | {
      t: 'session';
      id: string;
      worldId: string;
      player: string;
      model: string;
      width: number;
      height: number;
      fps: number;
      prompt: string;
      seededFrom: string | null;
      manifest: Uint8Array;
      /** JSON array of the regions erased in the world when the session started (null: none). */
      erased: string | null;
      /** Keyframes of `worldId` the manifest references: they must be stored already. */
      keyframeIds: number[];
      startedAt: string;
    }
  | { t: 'clip'; session: string; idx: number; clip: string }
  | {
      t: 'frame';
      session: string;
      idx: number;
      clipIdx: number;
      rgbCrc: number;
      timings: string;
      jpeg: Uint8Array;
    }
  | { t: 'end'; session: string; at: string }
  | { t: 'checkpoint' }
  /**
   * Clustered commits open with this: refused (and the batch with it) when the world's last commit
   * carried a higher lease epoch, i.e. came from the node that owns the world now.
   */
  | { t: 'fence'; world: string; epoch: number };

/** How a batch refused by its fence says so (`WorldStore` tells the world it lost). */
export const FENCED = 'fenced:';

export interface WriteResult {
  readonly ok: boolean;
  /** Why the batch was not written (it was rolled back). */
  readonly error?: string;
  /** Bytes of row data written (after compression). */
  readonly bytes: number;
}

/** A batch that waits for the write lock is retried this often, ms. */
const RETRY_MS = 25;
/** SQLite's busy timeout in the writer thread, ms (kept short so `close` can interrupt a wait). */
const WRITER_BUSY_TIMEOUT_MS = 100;

/** Shared state slots (Int32): acknowledged batches, lock wait start (s, 0 = none), closed flag. */
const ACKED = 0;
const WAIT_START_S = 1;
const CLOSED = 2;
const WAIT_START_FRAC = 3;
/** Set by the thread when it cannot run (its connection failed to open): nothing will be acknowledged. */
const FAILED = 4;

type ToWorker = { seq: number; ops: WriteOp[] } | { close: true };
type FromWorker = { seq: number; ok: boolean; error?: string; bytes: number };

interface WriterData {
  readonly kind: 'spatia-store-writer';
  readonly path: string;
  readonly port: MessagePort;
  readonly shared: SharedArrayBuffer;
}

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

  constructor(path: string, onFailure: (message: string) => void) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const shared = new SharedArrayBuffer(32);
    this.state = new Int32Array(shared);
    const tsx = pathToFileURL(
      createRequire(import.meta.url)
        .resolve('tsx/esm/api')
        .replace(/\.cjs$/, '.mjs'),
    ).href;
    const data: WriterData = { kind: 'spatia-store-writer', path, port: channel.port2, shared };
    // The thread teaches its loader TypeScript (tsx), then imports this module, which runs the writer.
    this.worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       import(workerData.tsx).then((m) => { m.register(); return import(workerData.module); });`,
      { eval: true, workerData: { ...data, tsx, module: import.meta.url }, transferList: [channel.port2] },
    );
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
  const db = new Database(data.path, { fileMustExist: true, timeout: WRITER_BUSY_TIMEOUT_MS });
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const st = {
    world: db.prepare(
      `INSERT INTO worlds (id, prompt, seed, voxel_size, scene, invite_token, owner_token_hash, spawn, edit_locked, created_at)
       VALUES (@id, @prompt, @seed, @voxelSizeM, @scene, @inviteToken, @ownerTokenHash, @spawn, @editLocked, @createdAt)
       ON CONFLICT(id) DO UPDATE SET prompt = excluded.prompt, invite_token = excluded.invite_token,
         owner_token_hash = excluded.owner_token_hash, edit_locked = excluded.edit_locked`,
    ),
    chunk: db.prepare(
      `INSERT INTO chunks (world_id, chunk_key, cx, cy, cz, voxels, data) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(world_id, chunk_key) DO UPDATE SET voxels = excluded.voxels, data = excluded.data`,
    ),
    keyframe: db.prepare(
      'INSERT OR REPLACE INTO keyframes (world_id, id, x, z, data) VALUES (?, ?, ?, ?, ?)',
    ),
    edit: db.prepare(
      `INSERT OR REPLACE INTO edits (world_id, seq, author, at, op, min_x, min_y, min_z, max_x, max_y, max_z, undone)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    hasKeyframe: db.prepare('SELECT 1 FROM keyframes WHERE world_id = ? AND id = ?').pluck(),
    hasBlob: db.prepare('SELECT 1 FROM snapshot_blobs WHERE hash = ?').pluck(),
    blob: db.prepare('INSERT OR IGNORE INTO snapshot_blobs (hash, raw_bytes, data) VALUES (?, ?, ?)'),
    session: db.prepare(
      `INSERT INTO sessions (id, world_id, player, model, width, height, fps, prompt, seeded_from,
         start_snapshot, start_manifest, start_erased, started_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, x'', ?, ?, ?)`,
    ),
    clip: db.prepare('INSERT OR REPLACE INTO session_clips (session_id, idx, clip) VALUES (?, ?, ?)'),
    frame: db.prepare(
      'INSERT OR REPLACE INTO session_frames (session_id, idx, clip_idx, rgb_crc, timings, jpeg) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    end: db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ?'),
    leaseEpoch: db.prepare('SELECT lease_epoch FROM worlds WHERE id = ?').pluck(),
    setLeaseEpoch: db.prepare('UPDATE worlds SET lease_epoch = ? WHERE id = ?'),
  };
  /** Sessions whose start row failed: their clips and frames are dropped (they would break the batch). */
  const failedSessions = new Set<string>();
  /** Deflated keyframes and blobs, computed once per op (outside the transaction, kept across retries). */
  const deflated = new WeakMap<WriteOp, Buffer>();
  const deflate = (op: WriteOp & { raw: Uint8Array }): Buffer => {
    let d = deflated.get(op);
    if (!d) {
      d = deflateRawSync(op.raw, { level: 1 });
      deflated.set(op, d);
    }
    return d;
  };

  const apply = (ops: readonly WriteOp[]): number => {
    let bytes = 0;
    for (const op of ops) {
      switch (op.t) {
        case 'world':
          st.world.run(op);
          break;
        case 'chunk':
          st.chunk.run(op.world, op.key, op.cx, op.cy, op.cz, op.voxels, op.data);
          bytes += op.data.byteLength;
          break;
        case 'keyframe': {
          const d = deflate(op);
          st.keyframe.run(op.world, op.id, op.x, op.z, d);
          bytes += d.byteLength;
          break;
        }
        case 'edit':
          st.edit.run(op.world, op.seq, op.author, op.at, op.op, ...op.bounds, op.undone);
          bytes += op.op.length;
          break;
        case 'blob':
          if (!st.hasBlob.get(op.hash)) {
            const d = deflate(op);
            st.blob.run(op.hash, op.raw.byteLength, d);
            bytes += d.byteLength;
          }
          break;
        case 'session':
          for (const id of op.keyframeIds)
            if (!st.hasKeyframe.get(op.worldId, id))
              throw new Error(`keyframe ${id} of world "${op.worldId}" is not stored`);
          st.session.run(
            op.id,
            op.worldId,
            op.player,
            op.model,
            op.width,
            op.height,
            op.fps,
            op.prompt,
            op.seededFrom,
            op.manifest,
            op.erased,
            op.startedAt,
          );
          bytes += op.manifest.byteLength;
          break;
        case 'clip':
          if (failedSessions.has(op.session)) break;
          st.clip.run(op.session, op.idx, op.clip);
          bytes += op.clip.length;
          break;
        case 'frame':
          if (failedSessions.has(op.session)) break;
          st.frame.run(op.session, op.idx, op.clipIdx, op.rgbCrc, op.timings, op.jpeg);
          bytes += op.jpeg.byteLength;
          break;
        case 'end':
          if (!failedSessions.has(op.session)) st.end.run(op.at, op.session);
          break;
        case 'checkpoint':
          break;
        case 'fence': {
          const stored = st.leaseEpoch.get(op.world) as number | undefined;
          if (stored !== undefined && stored > op.epoch)
            throw new Error(
              `${FENCED} world "${op.world}" was committed under lease epoch ${stored}, this batch holds ${op.epoch}`,
            );
          st.setLeaseEpoch.run(op.epoch, op.world);
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
  const ack = (m: FromWorker): void => {
    data.port.postMessage(m);
    Atomics.store(state, ACKED, m.seq);
    Atomics.notify(state, ACKED);
  };
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
      Atomics.store(state, CLOSED, 1);
      Atomics.notify(state, CLOSED);
      data.port.close();
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
