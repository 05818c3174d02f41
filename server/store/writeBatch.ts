import type { MessagePort } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';

/**
 * What the store hands its writer thread, and how the thread answers: the contract between
 * `StoreWriter` (main thread) and the thread that writes to SQLite (`storeWriter.ts`) or to
 * PostgreSQL (`postgres/postgresWriter.ts`).
 */

/** Where a world store lives. */
export type StoreTarget =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string };

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
      /** JSON of the world's spawn camera (null: the scene's or the default). */
      spawn: string | null;
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

/** Shared state slots (Int32): acknowledged batches, lock wait start (s, 0 = none), closed flag. */
export const ACKED = 0;
export const WAIT_START_S = 1;
export const CLOSED = 2;
export const WAIT_START_FRAC = 3;
/** Set by the thread when it cannot run (its connection failed to open): nothing will be acknowledged. */
export const FAILED = 4;

export type ToWorker = { seq: number; ops: WriteOp[] } | { close: true };
export type FromWorker = { seq: number; ok: boolean; error?: string; bytes: number };

export interface WriterData {
  readonly kind: 'spatia-store-writer';
  /** A SQLite file's path, or a PostgreSQL connection URL. */
  readonly target: StoreTarget;
  readonly port: MessagePort;
  readonly shared: SharedArrayBuffer;
}

/** Deflates keyframes and snapshot blobs once per op (outside the transaction, kept across retries). */
export function deflateOnce(): (op: WriteOp & { raw: Uint8Array }) => Buffer {
  const deflated = new WeakMap<WriteOp, Buffer>();
  return (op) => {
    let d = deflated.get(op);
    if (!d) {
      d = deflateRawSync(op.raw, { level: 1 });
      deflated.set(op, d);
    }
    return d;
  };
}

/** The writer thread's acknowledgement: the message, then the counter `flushSync` waits on. */
export function acknowledge(data: WriterData, state: Int32Array, m: FromWorker): void {
  data.port.postMessage(m);
  Atomics.store(state, ACKED, m.seq);
  Atomics.notify(state, ACKED);
}

/** The writer thread's last word: it has closed its connection (`close` waits for this). */
export function signalClosed(data: WriterData, state: Int32Array): void {
  Atomics.store(state, CLOSED, 1);
  Atomics.notify(state, CLOSED);
  data.port.close();
}
