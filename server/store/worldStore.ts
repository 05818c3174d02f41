import { type Stats, statSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { CameraState } from '../../shared/camera/controller.ts';
import { BinaryReader, BinaryWriter } from '../../shared/codec/binaryWriter.ts';
import { type EditRecord, loggedEditOpSchema } from '../../shared/edit/editOps.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { RgbdImage } from '../../shared/image.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { KeyframeStore } from '../memory/keyframes.ts';
import { decodeChunk, decodeKeyframe, encodeChunk, encodeKeyframe } from '../memory/snapshot.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import type { VoxelChunk } from '../memory/voxelChunk.ts';
import { VoxelGrid } from '../memory/voxelGrid.ts';
import { parseJsonOrUndefined } from '../util/json.ts';
import { PostgresDb } from './postgres/postgresDb.ts';
import { isPostgresUrl, withoutPassword } from './postgres/postgresUrl.ts';
import { checkReadable, migrate, refuseUnknownStore } from './schema.ts';
import { SessionLog, type StoreLog } from './sessionLog.ts';
import { dataByKey, SqliteDb, type StoreDb } from './storeDb.ts';
import { StoreWriter } from './storeWriter.ts';
import { FENCED, type StoreTarget, type WriteOp } from './writeBatch.ts';

/** What a world is, apart from its memory. */
export interface WorldMeta {
  readonly id: string;
  readonly prompt: string;
  readonly seed: number;
  readonly voxelSizeM: number;
  /** Bundled ground-truth scene the world was seeded from, if any. */
  readonly scene?: string | undefined;
  /** Invite token of a private world (absent: public). */
  readonly inviteToken?: string | undefined;
  /** SHA-256 (hex) of the token of the world's owner, who may rotate the invite token. */
  readonly ownerTokenHash?: string | undefined;
  /** Where players appear, when the world says (imported captures); else the scene's or the default. */
  readonly spawn?: CameraState | undefined;
  /** The creator locked editing: edits are refused until they unlock it. */
  readonly editLocked?: boolean | undefined;
  readonly createdAt: string;
}

export interface CommitStats {
  readonly chunks: number;
  readonly keyframes: number;
  /** Bytes handed to the writer (chunks raw, keyframes before compression). */
  readonly bytes: number;
}

/** Whether the store is saving what it is given. */
export interface StoreHealth {
  readonly ok: boolean;
  /** Why not, for a person (absent when ok). */
  readonly reason?: string;
  /** Write batches handed to the writer thread and not yet committed. */
  readonly pendingWrites: number;
  /** Bytes of world chunks and keyframes kept in RAM until the writer commits them. */
  readonly pendingBytes: number;
  /** How long the oldest pending write has waited for another connection's write lock, ms. */
  readonly lockWaitMs: number;
}

export interface WorldStoreOptions {
  readonly readonly?: boolean;
  /** Bytes of keyframe images each world keeps in RAM (default 64 MiB); older ones reload on demand. */
  readonly keyframeRamBytes?: number;
  /** Bytes one recorded session may add to the store before recording stops (default 2 GiB). */
  readonly recordingCapBytes?: number;
  /** A write waiting this long for another connection's lock makes `health()` degraded (default 10 s). */
  readonly lockDegradedMs?: number;
  /** How long `close` waits for pending writes (default 30 s). */
  readonly closeTimeoutMs?: number;
  readonly log?: StoreLog;
}

export const DEFAULT_KEYFRAME_RAM_BYTES = 64 * 2 ** 20;
export const DEFAULT_RECORDING_CAP_BYTES = 2 * 2 ** 30;
const DEFAULT_LOCK_DEGRADED_MS = 10_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** A chunk written to the writer and not yet acknowledged (the only copy once evicted). */
interface PendingChunk {
  readonly key: number;
  readonly cx: number;
  readonly cy: number;
  readonly cz: number;
  readonly voxels: number;
  readonly data: Uint8Array;
  inFlight: boolean;
}

interface PendingKeyframe {
  readonly id: number;
  /** The camera's horizontal position (what `loadNear` queries by). */
  readonly x: number;
  readonly z: number;
  readonly raw: Uint8Array;
  inFlight: boolean;
}

interface WorldState {
  /** Chunk key → revision handed to the writer (pending or committed). */
  readonly sent: Map<number, number>;
  readonly pendingChunks: Map<number, PendingChunk>;
  /** Keyframe ids handed to the writer (pending or committed). */
  readonly sentKeyframes: Set<number>;
  readonly pendingKeyframes: Map<number, PendingKeyframe>;
  /** Edit log rows not yet written (by seq; a row written again replaces the pending one). */
  readonly pendingEdits: Map<number, { row: EditRecord; inFlight: boolean }>;
  /** The memory last committed or loaded, whose keyframe images may leave RAM once committed. */
  memory: SpatialMemory | undefined;
}

const stderrLog: StoreLog = {
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'warn', ...obj, msg })}\n`),
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'error', ...obj, msg })}\n`),
};

/**
 * Durable worlds: metadata, memory chunks, keyframes, edit logs and recorded sessions, in SQLite
 * (WAL; the default, one machine) or PostgreSQL (a `postgres://` URL; clustered nodes on several
 * machines). The tables and their versions are in `schema.ts` (PostgreSQL's in
 * `postgres/postgresSchema.ts`): opening read-write migrates an older store forward; a store from a
 * newer Spatia is refused, and so is, read-only, one that would need migrating.
 *
 * Writes never block the event loop: `commit` encodes every chunk whose revision moved and every
 * new keyframe and hands them, as one batch, to a writer thread (`storeWriter.ts`, or
 * `postgres/postgresWriter.ts`) that commits the batch in one transaction, waiting there if another
 * connection holds a lock. Until a batch is committed its rows stay in RAM (a chunk may leave the
 * grid meanwhile: `loadNear` and `loadMemory` read the pending copy), and a failed batch is retried
 * by the next `commit`. A crash (even SIGKILL) loses at most what was not committed yet.
 * `flush` / `close` wait for the writer.
 *
 * Keyframe images beyond `keyframeRamBytes` per world leave RAM once committed and come back from
 * the store when read. `health()` reports a store that is not saving (its file deleted or replaced,
 * writes failing, a write waiting for long); once the file is gone, writes throw STORE. Reads are
 * synchronous (`storeDb.ts`): SQLite's on the calling thread (WAL readers do not wait for writers),
 * PostgreSQL's block it for a round trip to the server. A damaged row makes `getWorld`,
 * `loadMemory` and `loadNear` throw STORE naming the world and the row.
 */
export class WorldStore {
  /**
   * Told when a commit of `worldId` was refused because a node with a newer lease committed it
   * (clustered mode): this node must stop serving the world.
   */
  onFenced: (worldId: string) => void = () => {};
  private readonly db: StoreDb;
  /** Where the store lives, as messages name it (a PostgreSQL URL without its password). */
  readonly path: string;
  /** Recorded play sessions, in the same database. */
  readonly sessions: SessionLog;
  private readonly writer: StoreWriter | undefined;
  private readonly worldStates = new Map<string, WorldState>();
  /** Worlds upserted and not yet committed (getWorld must see them). */
  private readonly pendingWorlds = new Map<string, WorldMeta>();
  private readonly identity: Stats | undefined;
  private readonly log: StoreLog;
  private readonly keyframeRamBytes: number;
  private readonly lockDegradedMs: number;
  private readonly closeTimeoutMs: number;
  /** Permanent: the file is gone or the writer died. */
  private lost: string | undefined;
  /** The last batch failed (cleared by the next that commits). */
  private writeError: string | undefined;
  private reported: string | undefined;
  private isClosed = false;

  /** `location`: a SQLite file's path, or a PostgreSQL URL (`postgres://…`, clustered nodes on several machines). */
  constructor(location: string, opts: WorldStoreOptions = {}) {
    this.log = opts.log ?? stderrLog;
    this.keyframeRamBytes = opts.keyframeRamBytes ?? DEFAULT_KEYFRAME_RAM_BYTES;
    this.lockDegradedMs = opts.lockDegradedMs ?? DEFAULT_LOCK_DEGRADED_MS;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (!(this.keyframeRamBytes >= 0))
      throw new SpatiaError(
        'INVALID_ARGUMENT',
        `keyframe RAM budget must be ≥ 0 bytes, got ${this.keyframeRamBytes}`,
      );
    const target: StoreTarget = isPostgresUrl(location)
      ? { kind: 'postgres', url: location }
      : { kind: 'sqlite', path: location };
    this.path = target.kind === 'postgres' ? withoutPassword(location) : location;
    const readonly = opts.readonly ?? false;
    if (target.kind === 'postgres') this.db = new PostgresDb(target.url, this.path, { readonly });
    else {
      this.db = new SqliteDb(openSqlite(location, readonly));
      if (!readonly && location !== ':memory:' && !location.startsWith('file:'))
        this.identity = statSync(location);
    }
    if (!readonly && (target.kind === 'postgres' || this.identity))
      this.writer = new StoreWriter(target, (message) => this.loseStore(message));
    this.sessions = new SessionLog(this.db, {
      write: (ops, done) => this.write(ops, done),
      check: () => this.checkWritable(),
      commit: (worldId, memory) => this.commit(worldId, memory),
      log: this.log,
      capBytes: opts.recordingCapBytes ?? DEFAULT_RECORDING_CAP_BYTES,
    });
  }

  /** Waits (blocking, up to `closeTimeoutMs`) for pending writes, then closes. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.writer) {
      try {
        this.sessions.flush();
      } catch {
        // reported by the session log
      }
      if (!this.writer.close(this.closeTimeoutMs))
        this.log.error(
          { store: this.path, pendingWrites: this.writer.pending },
          'world store closed with writes not committed',
        );
    }
    this.db.close();
  }

  /** Resolves once everything handed to the writer so far is committed (or has failed). */
  flush(): Promise<void> {
    return this.writer ? this.writer.flush() : Promise.resolve();
  }

  /** `flush`, blocking the thread: for tools and tests. False on timeout. */
  flushSync(timeoutMs = this.closeTimeoutMs): boolean {
    return this.writer ? this.writer.flushSync(timeoutMs) : true;
  }

  /**
   * Whether the store is saving: false when its file was deleted or replaced while open, the writer
   * thread failed, the last write failed, or a write has waited for the lock past `lockDegradedMs`.
   */
  health(): StoreHealth {
    this.writer?.drain();
    this.checkFile();
    const pendingWrites = this.writer?.pending ?? 0;
    let pendingBytes = 0;
    for (const w of this.worldStates.values()) {
      for (const p of w.pendingChunks.values()) pendingBytes += p.data.byteLength;
      for (const p of w.pendingKeyframes.values()) pendingBytes += p.raw.byteLength;
    }
    const lockWaitMs = this.writer?.lockWaitMs() ?? 0;
    let reason = this.lost ?? this.writeError;
    if (!reason && lockWaitMs > this.lockDegradedMs)
      reason = `the world store ${this.path} is locked by another connection: ${pendingWrites} writes have waited ${(lockWaitMs / 1000).toFixed(1)} s`;
    return reason
      ? { ok: false, reason, pendingWrites, pendingBytes, lockWaitMs }
      : { ok: true, pendingWrites, pendingBytes, lockWaitMs };
  }

  /** Compares the open file with what the path names now; a deleted or replaced file loses the store. */
  private checkFile(): void {
    if (!this.identity || this.lost) return;
    let now: Stats | undefined;
    try {
      now = statSync(this.path, { throwIfNoEntry: false });
    } catch (e) {
      this.loseStore(`the world store ${this.path} cannot be checked: ${(e as Error).message}`);
      return;
    }
    if (!now)
      this.loseStore(
        `the world store ${this.path} was deleted while the server ran: nothing is saved any more ` +
          '(worlds, chunks, keyframes and recordings since then are lost at exit); restart the server on a store',
      );
    else if (now.ino !== this.identity.ino || now.dev !== this.identity.dev)
      this.loseStore(
        `the world store ${this.path} was replaced by another file while the server ran: nothing is saved ` +
          'any more; restart the server',
      );
  }

  private loseStore(reason: string): void {
    if (this.lost) return;
    this.lost = reason;
    this.report(reason);
  }

  private report(reason: string): void {
    if (this.reported === reason) return;
    this.reported = reason;
    this.log.error({ store: this.path }, reason);
  }

  /** Throws STORE unless writes can be saved. */
  private checkWritable(): void {
    if (!this.writer) throw new SpatiaError('STORE', `the world store ${this.path} is open read-only`);
    if (this.isClosed) throw new SpatiaError('STORE', `the world store ${this.path} is closed`);
    this.writer.drain();
    this.checkFile();
    if (this.lost) throw new SpatiaError('STORE', this.lost);
  }

  /** Hands a batch to the writer; a failure is reported (and cleared by the next batch that commits). */
  private write(ops: WriteOp[], done?: (ok: boolean, error?: string) => void): void {
    this.checkWritable();
    this.writer!.write(ops, (r) => {
      if (r.ok) {
        if (this.writeError) this.log.warn({ store: this.path }, 'world store writes succeed again');
        this.writeError = undefined;
        this.reported = undefined;
      } else if (r.error?.startsWith(FENCED)) {
        // Not the store's fault: another node owns the world now (the caller drops it).
        this.log.warn(
          { store: this.path, why: r.error },
          'a commit from a node that lost its world was refused',
        );
      } else {
        this.writeError = `writing the world store ${this.path} failed: ${r.error}`;
        this.report(this.writeError);
      }
      done?.(r.ok, r.error);
    });
  }

  /** Creates a world's row, or updates its prompt, invite token and owner token hash. */
  upsertWorld(meta: WorldMeta): void {
    this.pendingWorlds.set(meta.id, meta);
    this.write([worldOp(meta)], (ok) => {
      if (ok && this.pendingWorlds.get(meta.id) === meta) this.pendingWorlds.delete(meta.id);
    });
  }

  /** The world's metadata, or undefined; STORE when its row is damaged. */
  getWorld(id: string): WorldMeta | undefined {
    const pending = this.pendingWorlds.get(id);
    if (pending) return pending;
    const row = this.db.get<{
      id: string;
      prompt: unknown;
      seed: unknown;
      voxel_size: unknown;
      scene: unknown;
      invite_token: unknown;
      owner_token_hash?: unknown;
      spawn?: unknown;
      edit_locked?: unknown;
      created_at: unknown;
    }>('SELECT * FROM worlds WHERE id = ?', id);
    if (!row) return undefined;
    const damaged = (what: string): SpatiaError =>
      new SpatiaError('STORE', `world "${id}" is damaged in the store ${this.path}: ${what}`);
    const v = row.voxel_size;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 100)
      throw damaged(`its voxel size is ${String(v)} (expected metres > 0)`);
    if (typeof row.seed !== 'number' || !Number.isInteger(row.seed))
      throw damaged(`its seed is ${String(row.seed)}`);
    if (typeof row.prompt !== 'string') throw damaged('its prompt is not text');
    if (row.scene !== null && typeof row.scene !== 'string') throw damaged('its scene is not text');
    if (row.invite_token !== null && typeof row.invite_token !== 'string')
      throw damaged('its invite token is not text');
    const owner = row.owner_token_hash ?? null;
    if (owner !== null && typeof owner !== 'string') throw damaged('its owner token hash is not text');
    let spawn: CameraState | undefined;
    if (row.spawn !== null && row.spawn !== undefined) {
      const parsed =
        typeof row.spawn === 'string' ? spawnSchema.safeParse(parseJsonOrUndefined(row.spawn)) : undefined;
      if (!parsed?.success) throw damaged('its spawn is not {position: [x, y, z], yaw, pitch}');
      spawn = parsed.data as CameraState;
    }
    return {
      id: row.id,
      prompt: row.prompt,
      seed: row.seed,
      voxelSizeM: v,
      scene: (row.scene as string | null) ?? undefined,
      inviteToken: (row.invite_token as string | null) ?? undefined,
      ownerTokenHash: owner ?? undefined,
      spawn,
      editLocked: row.edit_locked === 1,
      createdAt: String(row.created_at),
    };
  }

  /** A world's edit log, oldest first; STORE when a row is damaged (its erased regions would be lost). */
  listEdits(worldId: string): EditRecord[] {
    const rows = this.db.all<Record<string, unknown>>(
      'SELECT * FROM edits WHERE world_id = ? ORDER BY seq',
      worldId,
    );
    return rows.map((row) => {
      const parsed =
        typeof row.op === 'string' ? loggedEditOpSchema.safeParse(parseJsonOrUndefined(row.op)) : undefined;
      const b = ['min_x', 'min_y', 'min_z', 'max_x', 'max_y', 'max_z'].map((k) => row[k]);
      if (!parsed?.success || !b.every((v) => typeof v === 'number' && Number.isFinite(v)))
        throw new SpatiaError(
          'STORE',
          `world "${worldId}" is damaged in the store ${this.path}: edit ${String(row.seq)} cannot be read`,
        );
      const n = b as number[];
      return {
        seq: Number(row.seq),
        author: String(row.author),
        at: String(row.at),
        op: parsed.data,
        bounds: { min: [n[0]!, n[1]!, n[2]!], max: [n[3]!, n[4]!, n[5]!] },
        undone: row.undone === 1,
      };
    });
  }

  listWorlds(): string[] {
    const ids = this.db.all<{ id: string }>('SELECT id FROM worlds ORDER BY created_at').map((r) => r.id);
    for (const id of this.pendingWorlds.keys()) if (!ids.includes(id)) ids.push(id);
    return ids;
  }

  private state(worldId: string): WorldState {
    let s = this.worldStates.get(worldId);
    if (!s) {
      s = {
        sent: new Map(),
        pendingChunks: new Map(),
        sentKeyframes: new Set(),
        pendingKeyframes: new Map(),
        pendingEdits: new Map(),
        memory: undefined,
      };
      this.worldStates.set(worldId, s);
    }
    return s;
  }

  /** Lets this memory's committed keyframe images leave RAM beyond the budget (once per memory). */
  private adopt(worldId: string, memory: SpatialMemory, s: WorldState): void {
    s.memory = memory;
    if (!this.writer || memory.keyframes.hasImageStore) return;
    memory.keyframes.useImageStore({
      budgetBytes: this.keyframeRamBytes,
      load: (id) => this.keyframeImage(worldId, id),
    });
    for (const id of s.sentKeyframes) if (!s.pendingKeyframes.has(id)) memory.keyframes.markPersisted(id);
  }

  /**
   * Hands what changed in `memory` since the last commit to the writer thread, to be written in one
   * transaction; returns at once. STORE when the store cannot save any more (see `health`).
   */
  commit(
    worldId: string,
    memory: SpatialMemory,
    edits: readonly EditRecord[] = [],
    leaseEpoch?: number,
  ): CommitStats {
    this.checkWritable();
    const s = this.state(worldId);
    this.adopt(worldId, memory, s);
    for (const c of memory.grid.chunks()) {
      // An edit may empty a stored chunk: it is written empty, or the store would bring the voxels back.
      if ((c.isEmpty && !s.sent.has(c.key)) || s.sent.get(c.key) === c.revision) continue;
      const w = new BinaryWriter();
      encodeChunk(w, c);
      s.pendingChunks.set(c.key, {
        key: c.key,
        cx: c.cx,
        cy: c.cy,
        cz: c.cz,
        voxels: c.count,
        data: w.finish(),
        inFlight: false,
      });
      s.sent.set(c.key, c.revision);
    }
    for (const kf of memory.keyframes.all()) {
      if (s.sentKeyframes.has(kf.id)) continue;
      const w = new BinaryWriter();
      encodeKeyframe(w, kf);
      const [x, , z] = kf.pose.position;
      s.pendingKeyframes.set(kf.id, { id: kf.id, x, z, raw: w.finish(), inFlight: false });
      s.sentKeyframes.add(kf.id);
    }
    const ops: WriteOp[] = [];
    const chunks: PendingChunk[] = [];
    const keyframes: PendingKeyframe[] = [];
    let bytes = 0;
    for (const p of s.pendingChunks.values()) {
      if (p.inFlight) continue;
      p.inFlight = true;
      chunks.push(p);
      ops.push({
        t: 'chunk',
        world: worldId,
        key: p.key,
        cx: p.cx,
        cy: p.cy,
        cz: p.cz,
        voxels: p.voxels,
        data: p.data,
      });
      bytes += p.data.byteLength;
    }
    for (const p of s.pendingKeyframes.values()) {
      if (p.inFlight) continue;
      p.inFlight = true;
      keyframes.push(p);
      ops.push({ t: 'keyframe', world: worldId, id: p.id, x: p.x, z: p.z, raw: p.raw });
      bytes += p.raw.byteLength;
    }
    // In the same transaction as the chunks they changed: a crash keeps both or neither. Kept until written, like chunks.
    for (const e of edits) s.pendingEdits.set(e.seq, { row: e, inFlight: false });
    const editRows: { row: EditRecord; inFlight: boolean }[] = [];
    for (const p of s.pendingEdits.values()) {
      if (p.inFlight) continue;
      p.inFlight = true;
      editRows.push(p);
      ops.push(editOp(worldId, p.row));
    }
    if (ops.length === 0) return { chunks: 0, keyframes: 0, bytes: 0 };
    // Clustered: the batch is refused whole if a node with a newer lease has committed the world.
    if (leaseEpoch !== undefined) ops.unshift({ t: 'fence', world: worldId, epoch: leaseEpoch });
    const world = this.pendingWorlds.get(worldId);
    if (world) ops.unshift(worldOp(world));
    this.write(ops, (ok, error) => {
      if (!ok && error?.startsWith(FENCED)) {
        // None of it will ever be this node's to write.
        s.pendingChunks.clear();
        s.pendingKeyframes.clear();
        s.pendingEdits.clear();
        this.onFenced(worldId);
        return;
      }
      for (const p of chunks) {
        p.inFlight = false;
        if (ok && s.pendingChunks.get(p.key) === p) s.pendingChunks.delete(p.key);
      }
      for (const p of editRows) {
        p.inFlight = false;
        if (ok && s.pendingEdits.get(p.row.seq) === p) s.pendingEdits.delete(p.row.seq);
      }
      for (const p of keyframes) {
        p.inFlight = false;
        if (!ok) continue;
        s.pendingKeyframes.delete(p.id);
        s.memory?.keyframes.markPersisted(p.id);
      }
      if (ok && world && this.pendingWorlds.get(worldId) === world) this.pendingWorlds.delete(worldId);
    });
    return { chunks: chunks.length, keyframes: keyframes.length, bytes };
  }

  /** A keyframe's image read back (its image left RAM). STORE when the row is missing or damaged. */
  private keyframeImage(worldId: string, id: number): RgbdImage {
    const pending = this.worldStates.get(worldId)?.pendingKeyframes.get(id);
    const raw = pending
      ? pending.raw
      : (() => {
          const row = this.db.get<{ data: unknown }>(
            'SELECT data FROM keyframes WHERE world_id = ? AND id = ?',
            worldId,
            id,
          );
          if (!row)
            throw new SpatiaError(
              'STORE',
              `world "${worldId}": keyframe ${id} is missing from the store ${this.path}`,
            );
          return this.inflate(worldId, `keyframe ${id}`, row.data);
        })();
    const kf = this.decode(worldId, `keyframe ${id}`, () =>
      decodeKeyframe(new BinaryReader(raw, 'STORE', 'stored keyframe')),
    );
    if (!kf.image || kf.id !== id)
      throw new SpatiaError(
        'STORE',
        `world "${worldId}": keyframe ${id} in the store ${this.path} has no image`,
      );
    return kf.image;
  }

  private damaged(worldId: string, what: string, e: unknown): SpatiaError {
    return new SpatiaError(
      'STORE',
      `world "${worldId}" is damaged in the store ${this.path}: ${what} cannot be read (${(e as Error).message})`,
    );
  }

  private inflate(worldId: string, what: string, data: unknown): Uint8Array {
    try {
      if (!(data instanceof Uint8Array)) throw new Error('not a blob');
      return new Uint8Array(inflateRawSync(data));
    } catch (e) {
      throw this.damaged(worldId, what, e);
    }
  }

  private decode<T>(worldId: string, what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.damaged(worldId, what, e);
    }
  }

  private decodeChunkRow(
    worldId: string,
    row: { chunk_key: unknown; cx: unknown; cy: unknown; cz: unknown; data: unknown },
  ): VoxelChunk {
    const what = `chunk (${String(row.cx)}, ${String(row.cy)}, ${String(row.cz)})`;
    return this.decode(worldId, what, () => {
      if (!(row.data instanceof Uint8Array)) throw new Error('its data is not a blob');
      const r = new BinaryReader(new Uint8Array(row.data), 'STORE', 'stored chunk');
      const c = decodeChunk(r);
      if (r.remaining !== 0) throw new Error(`${r.remaining} trailing bytes`);
      if (c.key !== row.chunk_key || c.cx !== row.cx || c.cy !== row.cy || c.cz !== row.cz)
        throw new Error(`its data holds chunk (${c.cx}, ${c.cy}, ${c.cz})`);
      return c;
    });
  }

  /**
   * The world's memory as last committed (with writes still pending): all of it, or with `near` only
   * the chunks and keyframes within `near.radiusM` (horizontally) of `near.position`, as a server
   * loads a world (the rest comes back with `loadNear`). STORE naming the world and the row when a
   * chunk or keyframe is damaged. Keyframe images beyond the budget stay on disk.
   */
  loadMemory(worldId: string, voxelSizeM: number, near?: { position: Vec3; radiusM: number }): SpatialMemory {
    this.writer?.drain();
    const s = this.state(worldId);
    const grid = this.decode(worldId, `voxel size ${voxelSizeM}`, () => new VoxelGrid(voxelSizeM));
    const area = near && horizontalArea(near.position, near.radiusM, grid.chunkSizeM);
    const chunkRows = area
      ? this.chunkRowsIn(worldId, area)
      : this.db.iterate('SELECT chunk_key, cx, cy, cz, data FROM chunks WHERE world_id = ?', worldId);
    for (const row of chunkRows as Iterable<{
      chunk_key: unknown;
      cx: unknown;
      cy: unknown;
      cz: unknown;
      data: unknown;
    }>) {
      if (s.pendingChunks.has(row.chunk_key as number)) continue;
      if (area && !area.hasChunk(row.cx as number, row.cz as number)) continue;
      const c = this.decodeChunkRow(worldId, row);
      grid.putChunk(c);
      s.sent.set(c.key, c.revision);
    }
    for (const p of s.pendingChunks.values()) {
      const c = this.decodeChunkRow(worldId, {
        chunk_key: p.key,
        cx: p.cx,
        cy: p.cy,
        cz: p.cz,
        data: p.data,
      });
      grid.putChunk(c);
      s.sent.set(c.key, c.revision);
    }
    const keyframes = new KeyframeStore();
    const memory = new SpatialMemory(grid, keyframes);
    s.memory = memory;
    if (this.writer)
      keyframes.useImageStore({
        budgetBytes: this.keyframeRamBytes,
        load: (id) => this.keyframeImage(worldId, id),
      });
    const keyframeRows = area
      ? this.db.iterate(
          'SELECT id, x, z, data FROM keyframes WHERE world_id = ? AND (x IS NULL OR (x BETWEEN ? AND ? AND z BETWEEN ? AND ?)) ORDER BY id',
          worldId,
          area.minX,
          area.maxX,
          area.minZ,
          area.maxZ,
        )
      : this.db.iterate('SELECT id, data FROM keyframes WHERE world_id = ? ORDER BY id', worldId);
    for (const row of keyframeRows as Iterable<{
      id: number;
      x?: number | null;
      z?: number | null;
      data: unknown;
    }>) {
      if (s.pendingKeyframes.has(row.id)) continue;
      // A row without a position could not be read when the store was upgraded: decoding it reports the damage.
      if (area && typeof row.x === 'number' && !area.has(row.x, row.z as number)) continue;
      const raw = this.inflate(worldId, `keyframe ${row.id}`, row.data);
      this.addLoadedKeyframe(worldId, keyframes, { id: row.id, raw, persisted: true });
    }
    for (const p of [...s.pendingKeyframes.values()].sort((a, b) => a.id - b.id))
      this.addLoadedKeyframe(worldId, keyframes, { id: p.id, raw: p.raw, persisted: false });
    for (const kf of keyframes.all()) s.sentKeyframes.add(kf.id);
    if (area) {
      const max = this.db.value('SELECT MAX(id) FROM keyframes WHERE world_id = ?', worldId);
      if (typeof max === 'number') keyframes.reserveIdsBelow(max + 1);
    }
    return memory;
  }

  private addLoadedKeyframe(
    worldId: string,
    keyframes: KeyframeStore,
    k: { id: number; raw: Uint8Array; persisted: boolean },
  ): void {
    const what = `keyframe ${k.id}`;
    this.decode(worldId, what, () => {
      const r = new BinaryReader(k.raw, 'STORE', 'stored keyframe');
      const kf = decodeKeyframe(r);
      if (r.remaining !== 0) throw new Error(`${r.remaining} trailing bytes`);
      if (kf.id !== k.id) throw new Error(`its data holds keyframe ${kf.id}`);
      keyframes.add(kf);
    });
    if (k.persisted) keyframes.markPersisted(k.id);
  }

  /**
   * Lets what is farther than `radiusM` (horizontally) from every position leave RAM: committed (or
   * pending) unchanged chunks, and persisted keyframes whose camera is that far. Chunks changed since
   * the last commit and keyframes not committed yet stay. `loadNear` brings them back.
   */
  evictFar(
    worldId: string,
    memory: SpatialMemory,
    positions: readonly (readonly number[])[],
    radiusM: number,
  ): { chunks: number; keyframes: number } {
    const s = this.state(worldId);
    const size = memory.grid.chunkSizeM;
    const far = (x: number, z: number): boolean =>
      positions.every((p) => Math.hypot(p[0]! - x, p[2]! - z) > radiusM);
    let chunks = 0;
    for (const c of [...memory.grid.chunks()]) {
      if (s.sent.get(c.key) !== c.revision) continue;
      if (far((c.cx + 0.5) * size, (c.cz + 0.5) * size)) {
        memory.grid.removeChunk(c.key);
        s.sent.delete(c.key); // set again when it comes back: this map follows RAM, not the world's history
        chunks++;
      }
    }
    const keyframes = memory.keyframes.evict((kf) => far(kf.pose.position[0], kf.pose.position[2]));
    for (const id of keyframes) s.sentKeyframes.delete(id);
    return { chunks, keyframes: keyframes.length };
  }

  /**
   * Brings the stored chunks and keyframes within `radiusM` (horizontally) of `position` that are
   * not in RAM back. Returns how many of each. STORE naming the world and the row when one is
   * damaged (the others stay loaded).
   */
  loadNear(
    worldId: string,
    memory: SpatialMemory,
    position: Vec3,
    radiusM: number,
  ): { chunks: number; keyframes: number } {
    this.writer?.drain();
    const s = this.state(worldId);
    const area = horizontalArea(position, radiusM, memory.grid.chunkSizeM);
    const rows = this.chunkRowsIn(worldId, area).filter((row) => !s.pendingChunks.has(row.chunk_key));
    for (const p of s.pendingChunks.values())
      rows.push({ chunk_key: p.key, cx: p.cx, cy: p.cy, cz: p.cz, data: p.data });
    const loaded = { chunks: 0, keyframes: 0 };
    let damage: SpatiaError | undefined;
    for (const row of rows) {
      if (memory.grid.hasChunk(row.chunk_key) || !area.hasChunk(row.cx, row.cz)) continue;
      try {
        const c = this.decodeChunkRow(worldId, row);
        memory.grid.putChunk(c);
        s.sent.set(c.key, c.revision);
        loaded.chunks++;
      } catch (e) {
        damage ??= e as SpatiaError;
      }
    }
    // Keyframes not committed yet never leave RAM: only committed rows can be missing.
    // Positions first: the blobs (a keyframe's image included) are read only for those not in RAM.
    const keyframeRows = this.db.all<{ id: number; x: number; z: number }>(
      'SELECT id, x, z FROM keyframes WHERE world_id = ? AND x BETWEEN ? AND ? AND z BETWEEN ? AND ? ORDER BY id',
      worldId,
      area.minX,
      area.maxX,
      area.minZ,
      area.maxZ,
    );
    const missing = keyframeRows.filter((row) => !memory.keyframes.has(row.id) && area.has(row.x, row.z));
    const blobs = dataByKey(
      this.db,
      'SELECT id AS key, data FROM keyframes WHERE world_id = ? AND id IN',
      [worldId],
      missing.map((row) => row.id),
      Number,
    );
    for (const row of missing) {
      try {
        const data = blobs.get(row.id);
        const raw = this.inflate(worldId, `keyframe ${row.id}`, data);
        this.addLoadedKeyframe(worldId, memory.keyframes, { id: row.id, raw, persisted: true });
        s.sentKeyframes.add(row.id);
        loaded.keyframes++;
      } catch (e) {
        damage ??= e as SpatiaError;
      }
    }
    if (damage) throw damage;
    return loaded;
  }

  /** Stored chunk rows whose chunk coordinates fall in `area`'s bounding range (`hasChunk` refines it). */
  private chunkRowsIn(worldId: string, area: HorizontalArea): ChunkRow[] {
    return this.db.all<ChunkRow>(
      'SELECT chunk_key, cx, cy, cz, data FROM chunks WHERE world_id = ? AND cx BETWEEN ? AND ? AND cz BETWEEN ? AND ?',
      worldId,
      area.minCx,
      area.maxCx,
      area.minCz,
      area.maxCz,
    );
  }

  /** Forgets a world's write state once it left RAM (its pending writes still complete). */
  unloadWorld(worldId: string): void {
    const s = this.worldStates.get(worldId);
    if (!s) return;
    s.memory = undefined;
    if (s.pendingChunks.size === 0 && s.pendingKeyframes.size === 0) this.worldStates.delete(worldId);
  }

  /** Bytes the store occupies (SQLite: the database file's pages; PostgreSQL: the database), for reporting. */
  sizeBytes(): number {
    return this.db.sizeBytes();
  }

  /** Folds the WAL into the database file (in the writer thread, after pending writes). */
  checkpoint(): void {
    this.write([{ t: 'checkpoint' }]);
  }
}

/** A world's row as the writer thread writes it. */
const worldOp = (meta: WorldMeta) => ({
  t: 'world' as const,
  id: meta.id,
  prompt: meta.prompt,
  seed: meta.seed,
  voxelSizeM: meta.voxelSizeM,
  scene: meta.scene ?? null,
  inviteToken: meta.inviteToken ?? null,
  ownerTokenHash: meta.ownerTokenHash ?? null,
  spawn: meta.spawn ? JSON.stringify(meta.spawn) : null,
  editLocked: meta.editLocked ? 1 : 0,
  createdAt: meta.createdAt,
});

const editOp = (worldId: string, e: EditRecord): WriteOp => ({
  t: 'edit',
  world: worldId,
  seq: e.seq,
  author: e.author,
  at: e.at,
  op: JSON.stringify(e.op),
  bounds: [...e.bounds.min, ...e.bounds.max] as [number, number, number, number, number, number],
  undone: e.undone ? 1 : 0,
});

const finiteNumber = z.number().refine(Number.isFinite);
const spawnSchema = z.strictObject({
  position: z.tuple([finiteNumber, finiteNumber, finiteNumber]),
  yaw: finiteNumber,
  pitch: finiteNumber,
});

interface ChunkRow {
  chunk_key: number;
  cx: number;
  cy: number;
  cz: number;
  data: unknown;
}

type HorizontalArea = ReturnType<typeof horizontalArea>;

/** The chunks and points within `radiusM` (horizontally) of `position`, with the bounding ranges to query by. */
function horizontalArea(position: Vec3, radiusM: number, chunkSizeM: number) {
  const [px, , pz] = position;
  const r = Math.ceil(radiusM / chunkSizeM) + 1;
  const cx = Math.floor(px / chunkSizeM);
  const cz = Math.floor(pz / chunkSizeM);
  const has = (x: number, z: number): boolean => Math.hypot(x - px, z - pz) <= radiusM;
  return {
    minCx: cx - r,
    maxCx: cx + r,
    minCz: cz - r,
    maxCz: cz + r,
    minX: px - radiusM,
    maxX: px + radiusM,
    minZ: pz - radiusM,
    maxZ: pz + radiusM,
    has,
    /** Whether a chunk's centre is within the radius. */
    hasChunk: (x: number, z: number): boolean => has((x + 0.5) * chunkSizeM, (z + 0.5) * chunkSizeM),
  };
}

/**
 * Opens a SQLite store: read-only, checks that this build reads it; read-write, refuses an unknown
 * file before writing anything, then sets WAL and migrates it to the latest schema.
 */
function openSqlite(path: string, readonly: boolean): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
  } catch (e) {
    throw new SpatiaError('STORE', `cannot open the world store ${path}: ${(e as Error).message}`);
  }
  try {
    if (readonly) checkReadable(db, path);
    else {
      refuseUnknownStore(db, path); // before the first write: a refused file stays byte-identical
      db.pragma('journal_mode = WAL');
      // WAL + NORMAL: a committed transaction survives a process crash; only an OS crash can lose the last ones.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, path);
    }
  } catch (e) {
    db.close();
    if (e instanceof SpatiaError) throw e;
    throw new SpatiaError('STORE', `cannot open the world store ${path}: ${(e as Error).message}`);
  }
  return db;
}
