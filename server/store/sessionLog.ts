import { createHash, randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { z } from 'zod';
import { BinaryReader, BinaryWriter } from '../../shared/codec/binaryWriter.ts';
import { type EditOp, type EditRegion, editRegionSchema } from '../../shared/edit/editOps.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { encodeChunk, sealSnapshot, snapshotHead, snapshotKeyframeCount } from '../memory/snapshot.ts';
import type { SpatialMemory } from '../memory/spatialMemory.ts';
import type { VoxelChunk } from '../memory/voxelChunk.ts';
import { parseJsonOrUndefined } from '../util/json.ts';
import { dataByKey, type StoreDb } from './storeDb.ts';
import type { WriteOp } from './writeBatch.ts';

/**
 * Recorded play sessions, in the world store's database: one row per session (who, where, which
 * model, the memory snapshot it started from), one per clip (target poses, seed, world time,
 * prompt: everything `replay` needs) and one per frame (the JPEG the player saw, the CRC-32 of the
 * generated RGB, stage timings). Rows are buffered and handed to the store's writer thread by
 * `flush` as one transaction.
 *
 * The start snapshot is not copied per recording: it is stored as a manifest of parts (schema v2)
 * — each chunk's bytes as a blob addressed by its SHA-256 (stored once, whichever recordings share
 * it), each keyframe as a reference to its row in `keyframes` (keyframes never change) — and
 * `session(id).startSnapshot` puts the exact bytes `SpatialMemory.save()` gave back together. A
 * session that adds more than the recording cap (blobs, clips, frames) stops recording; `onStopped`
 * listeners hear why.
 */
export interface SessionStart {
  readonly worldId: string;
  readonly player: string;
  readonly model: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly prompt: string;
  /**
   * The world's memory when the session began: its snapshot is recorded as parts (chunks deduplicated,
   * keyframes referenced), without copying the world. Give this or `startSnapshot`.
   */
  readonly startMemory?: SpatialMemory;
  /** The world's memory as snapshot bytes (split into bounded, deduplicated parts). */
  readonly startSnapshot?: Uint8Array;
  /** The ground-truth seed frame this session fused first, if it seeded the world. */
  readonly seededFrom?: { scene: string; rotation: number[]; position: number[]; timeS: number } | undefined;
  /** Regions erased in the world when the session started (replay keeps them empty too). */
  readonly erased?: readonly EditRegion[];
}

/** A recorded session as read back: `startSnapshot` holds exactly the bytes the memory saved at its start. */
export interface RecordedSession extends Omit<SessionStart, 'startMemory' | 'startSnapshot'> {
  readonly id: string;
  readonly startSnapshot: Uint8Array;
  readonly frames: number;
  readonly clips: number;
}

export interface RecordedClip {
  readonly index: number;
  readonly rotations: number[][];
  readonly positions: number[][];
  readonly seed: number;
  readonly timeS: number;
  readonly prompt: string;
  readonly inputSeq: number;
  /** Edits of the world since the previous clip (replay applies them before this one). */
  readonly edits?: readonly RecordedEdit[];
}

/** An edit, undo or redo as a recording keeps it. */
export interface RecordedEdit {
  readonly action: 'apply' | 'undo' | 'redo';
  /** Who: their session's player id (undo and redo are per player) and name. */
  readonly authorId: string;
  readonly author: string;
  /** The operation (apply only). */
  readonly op?: EditOp;
}

export interface RecordedFrame {
  readonly index: number;
  readonly clipIndex: number;
  readonly jpeg: Uint8Array;
  readonly rgbCrc: number;
  readonly timings: Record<string, number>;
}

/** Where the store reports trouble (a pino logger fits). */
export interface StoreLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the session log needs from its store. */
export interface SessionHost {
  /** Hands a batch to the writer thread; throws STORE when the store cannot save. */
  write(ops: WriteOp[], done?: (ok: boolean, error?: string) => void): void;
  /** Throws STORE when the store cannot save. */
  check(): void;
  /** Commits the world's pending chunks and keyframes (before a manifest references them). */
  commit(worldId: string, memory: SpatialMemory): unknown;
  readonly log: StoreLog;
  /** Bytes one session may add before its recording stops. */
  readonly capBytes: number;
}

/** A recording's progress. */
export interface RecordingState {
  /** Bytes this session added to the store (new snapshot parts, clips, frames; before compression). */
  bytes: number;
  /** Why recording stopped (absent while it records). */
  stopped?: string;
}

const MANIFEST_MAGIC = 'SPATIA-SNAPPARTS';
const MANIFEST_REF_MAGIC = 'SPATIA-SNAPREF-1';
const PART_LITERAL = 1;
const PART_BLOB = 2;
const PART_KEYFRAME = 3;
/** Largest blob part of a snapshot given as bytes (far below SQLite's 1 GB value limit). */
const MAX_BLOB_PART = 16 * 2 ** 20;

type Part =
  | { kind: typeof PART_LITERAL; bytes: Uint8Array }
  | { kind: typeof PART_BLOB; hash: Buffer; rawBytes: number }
  | { kind: typeof PART_KEYFRAME; id: number };

/** How long an ended recording still accepts the frames of its last clip, ms. */
const FORGET_ENDED_MS = 30_000;

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** A view that structured clone copies alone (not the whole buffer it may sit in). */
const own = (b: Uint8Array): Uint8Array =>
  b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();

function encodeManifest(parts: readonly Part[], sealed: boolean): Uint8Array {
  const w = new BinaryWriter();
  w.bytes(new TextEncoder().encode(MANIFEST_MAGIC));
  w.u8(sealed ? 1 : 0);
  w.u32(parts.length);
  for (const p of parts) {
    w.u8(p.kind);
    if (p.kind === PART_LITERAL) {
      w.u32(p.bytes.byteLength);
      w.bytes(p.bytes);
    } else if (p.kind === PART_BLOB) {
      w.bytes(p.hash);
      w.u32(p.rawBytes);
    } else w.u32(p.id);
  }
  return w.finish();
}

/** How many blob hashes the log remembers (a few MiB of strings) before it starts over. */
const KNOWN_BLOBS_MAX = 65_536;

/** What the session row holds: the hash of the manifest, which is stored as a blob part. */
function encodeManifestRef(hash: Buffer, rawBytes: number): Uint8Array {
  const w = new BinaryWriter();
  w.bytes(new TextEncoder().encode(MANIFEST_REF_MAGIC));
  w.bytes(hash);
  w.u32(rawBytes);
  return w.finish();
}

function decodeManifest(bytes: Uint8Array): { parts: Part[]; sealed: boolean } {
  const r = new BinaryReader(bytes, 'STORE', 'session start manifest');
  if (new TextDecoder().decode(r.bytes(MANIFEST_MAGIC.length)) !== MANIFEST_MAGIC)
    throw new SpatiaError('STORE', 'session start manifest has a wrong magic');
  const sealed = r.u8() === 1;
  const n = r.u32();
  const parts: Part[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    if (kind === PART_LITERAL) parts.push({ kind, bytes: r.bytes(r.u32()) });
    else if (kind === PART_BLOB) parts.push({ kind, hash: Buffer.from(r.bytes(32)), rawBytes: r.u32() });
    else if (kind === PART_KEYFRAME) parts.push({ kind, id: r.u32() });
    else throw new SpatiaError('STORE', `session start manifest has an unknown part kind ${kind}`);
  }
  return { parts, sealed };
}

export class SessionLog {
  private pendingClips: { id: string; clip: RecordedClip }[] = [];
  private pendingFrames: { id: string; frame: RecordedFrame }[] = [];
  private readonly recordings = new Map<string, RecordingState>();
  private readonly listeners: ((id: string, reason: string) => void)[] = [];
  /** Snapshot blob hashes written or being written (hex), at most `KNOWN_BLOBS_MAX`. */
  private readonly knownBlobs = new Set<string>();
  /** Per chunk object: the hash of its encoding at a revision. */
  private readonly chunkHashes = new WeakMap<
    VoxelChunk,
    { revision: number; hash: Buffer; hex: string; bytes: number }
  >();

  /** `db` (read) already holds the session tables (`schema.ts`); writes go through `host`. */
  constructor(
    private readonly db: StoreDb,
    private readonly host?: SessionHost,
  ) {}

  /** Calls `listener(sessionId, reason)` when a recording stops before its end (size cap, write failure). */
  onStopped(listener: (id: string, reason: string) => void): void {
    this.listeners.push(listener);
  }

  /** A recording's bytes so far and, once stopped early, why (undefined: unknown or ended). */
  recording(id: string): Readonly<RecordingState> | undefined {
    return this.recordings.get(id);
  }

  private writer(): SessionHost {
    if (!this.host) throw new SpatiaError('STORE', 'the world store is open read-only: it cannot record');
    return this.host;
  }

  private stop(id: string, reason: string): void {
    const r = this.recordings.get(id);
    if (!r || r.stopped) return;
    r.stopped = reason;
    this.pendingClips = this.pendingClips.filter((c) => c.id !== id);
    this.pendingFrames = this.pendingFrames.filter((f) => f.id !== id);
    this.host?.log.warn({ session: id, bytes: r.bytes }, `recording stopped: ${reason}`);
    for (const l of this.listeners) l(id, reason);
  }

  /** Adds `bytes` to a recording; false (and the recording stops) past the cap or when the store cannot save. */
  private account(id: string, bytes: number): boolean {
    const r = this.recordings.get(id);
    if (!r || r.stopped) return false;
    try {
      this.writer().check();
    } catch (e) {
      this.stop(id, (e as Error).message);
      return false;
    }
    const cap = this.writer().capBytes;
    if (r.bytes + bytes > cap) {
      this.stop(id, `the session reached the recording cap of ${(cap / 2 ** 20).toFixed(1)} MiB`);
      return false;
    }
    r.bytes += bytes;
    return true;
  }

  /**
   * Starts recording; returns the session id. The start snapshot's parts the store already holds are
   * not written again. Throws STORE when the store cannot save.
   */
  start(s: SessionStart): string {
    const host = this.writer();
    host.check();
    const id = randomUUID();
    const ops: WriteOp[] = [];
    const parts: Part[] = [];
    const newHashes: string[] = [];
    let added = 0;
    const blob = (rawBytes: number, hash: Buffer, hex: string, raw: () => Uint8Array): void => {
      parts.push({ kind: PART_BLOB, hash, rawBytes });
      if (this.knownBlobs.has(hex)) return;
      // Only spares the writer a blob it already has (it skips stored hashes itself): forgetting is safe.
      if (this.knownBlobs.size >= KNOWN_BLOBS_MAX) this.knownBlobs.clear();
      this.knownBlobs.add(hex);
      newHashes.push(hex);
      ops.push({ t: 'blob', hash: own(hash), raw: raw() });
      added += rawBytes;
    };
    let sealed: boolean;
    const keyframeIds: number[] = [];
    if (s.startMemory) {
      const memory = s.startMemory;
      host.commit(s.worldId, memory); // the keyframes the manifest references are written first
      const chunks = [...memory.grid.chunks()].filter((c) => !c.isEmpty);
      parts.push({ kind: PART_LITERAL, bytes: snapshotHead(memory.voxelSizeM, chunks.length) });
      for (const c of chunks) {
        const encode = (): Uint8Array => {
          const w = new BinaryWriter();
          encodeChunk(w, c);
          return w.finish();
        };
        let h = this.chunkHashes.get(c);
        let raw: Uint8Array | undefined;
        if (!h || h.revision !== c.revision) {
          raw = encode();
          const hash = sha256(raw);
          h = { revision: c.revision, hash, hex: hash.toString('hex'), bytes: raw.byteLength };
          this.chunkHashes.set(c, h);
        }
        blob(h.bytes, h.hash, h.hex, () => raw ?? encode());
      }
      const kfs = memory.keyframes.all();
      parts.push({ kind: PART_LITERAL, bytes: snapshotKeyframeCount(kfs.length) });
      for (const kf of kfs) {
        parts.push({ kind: PART_KEYFRAME, id: kf.id });
        keyframeIds.push(kf.id);
      }
      sealed = true;
    } else if (s.startSnapshot) {
      const bytes = s.startSnapshot;
      for (let o = 0; o < bytes.byteLength; o += MAX_BLOB_PART) {
        const raw = bytes.slice(o, Math.min(bytes.byteLength, o + MAX_BLOB_PART));
        const hash = sha256(raw);
        blob(raw.byteLength, hash, hash.toString('hex'), () => raw);
      }
      sealed = false;
    } else throw new SpatiaError('INVALID_ARGUMENT', 'a recording needs startMemory or startSnapshot');
    // The manifest is a part too: a recording of an unchanged world adds only its session row.
    const full = encodeManifest(parts, sealed);
    const fullHash = sha256(full);
    blob(full.byteLength, fullHash, fullHash.toString('hex'), () => full);
    const manifest = encodeManifestRef(fullHash, full.byteLength);
    ops.push({
      t: 'session',
      id,
      worldId: s.worldId,
      player: s.player,
      model: s.model,
      width: s.width,
      height: s.height,
      fps: s.fps,
      prompt: s.prompt,
      seededFrom: s.seededFrom ? JSON.stringify(s.seededFrom) : null,
      manifest,
      erased: s.erased && s.erased.length > 0 ? JSON.stringify(s.erased) : null,
      keyframeIds,
      startedAt: new Date().toISOString(),
    });
    this.recordings.set(id, { bytes: 0 });
    host.write(ops, (ok, error) => {
      if (ok) return;
      for (const h of newHashes) this.knownBlobs.delete(h);
      this.stop(id, `the recording could not be started in the store: ${error}`);
    });
    this.account(id, added + manifest.byteLength);
    return id;
  }

  /** Buffers a clip; false when the recording has stopped (cap, store failure) or is unknown. */
  clip(id: string, clip: RecordedClip): boolean {
    const json = JSON.stringify(clip);
    if (!this.account(id, json.length)) return false;
    this.pendingClips.push({ id, clip });
    return true;
  }

  /** Buffers a frame; false when the recording has stopped (cap, store failure) or is unknown. */
  frame(id: string, frame: RecordedFrame): boolean {
    if (!this.account(id, frame.jpeg.byteLength + 64)) return false;
    this.pendingFrames.push({ id, frame });
    return true;
  }

  /**
   * Flushes the session's rows and marks it ended. A frame of a clip already under way may still
   * arrive and is kept (replay regenerates every recorded clip); the state is forgotten a little later.
   */
  end(id: string): void {
    this.flush();
    const r = this.recordings.get(id);
    if (!r || !this.host) return;
    setTimeout(() => this.recordings.delete(id), FORGET_ENDED_MS).unref();
    try {
      this.host.write([{ t: 'end', session: id, at: new Date().toISOString() }]);
    } catch (e) {
      this.host.log.warn({ session: id, err: e }, 'recording end not saved');
    }
  }

  /** Hands buffered clips and frames to the writer as one transaction; returns how many rows. */
  flush(): number {
    if (this.pendingClips.length === 0 && this.pendingFrames.length === 0) return 0;
    const clips = this.pendingClips;
    const frames = this.pendingFrames;
    this.pendingClips = [];
    this.pendingFrames = [];
    const host = this.writer();
    const ops: WriteOp[] = [];
    const ids = new Set<string>();
    for (const { id, clip } of clips) {
      ops.push({ t: 'clip', session: id, idx: clip.index, clip: JSON.stringify(clip) });
      ids.add(id);
    }
    for (const { id, frame } of frames) {
      ops.push({
        t: 'frame',
        session: id,
        idx: frame.index,
        clipIdx: frame.clipIndex,
        rgbCrc: frame.rgbCrc,
        timings: JSON.stringify(frame.timings),
        jpeg: own(frame.jpeg),
      });
      ids.add(id);
    }
    const fail = (error: string | undefined): void => {
      for (const id of ids) this.stop(id, `recorded frames could not be saved: ${error}`);
    };
    try {
      host.write(ops, (ok, error) => {
        if (!ok) fail(error);
      });
    } catch (e) {
      fail((e as Error).message);
      throw e;
    }
    return clips.length + frames.length;
  }

  session(id: string): RecordedSession | undefined {
    const row = this.db.get<{
      id: string;
      world_id: string;
      player: string;
      model: string;
      width: number;
      height: number;
      fps: number;
      prompt: string;
      seeded_from: string | null;
      start_snapshot: Uint8Array;
      start_manifest: Uint8Array | null;
      start_erased: string | null;
    }>('SELECT * FROM sessions WHERE id = ?', id);
    if (!row) return undefined;
    const count = (table: string): number =>
      Number(this.db.value(`SELECT COUNT(*) FROM ${table} WHERE session_id = ?`, id));
    return {
      id: row.id,
      worldId: row.world_id,
      player: row.player,
      model: row.model,
      width: row.width,
      height: row.height,
      fps: row.fps,
      prompt: row.prompt,
      seededFrom: row.seeded_from ? JSON.parse(row.seeded_from) : undefined,
      erased: row.start_erased ? this.erasedRegions(row.id, row.start_erased) : [],
      startSnapshot: row.start_manifest
        ? this.assemble(row.id, row.world_id, new Uint8Array(row.start_manifest))
        : new Uint8Array(row.start_snapshot),
      frames: count('session_frames'),
      clips: count('session_clips'),
    };
  }

  private erasedRegions(sessionId: string, json: string): EditRegion[] {
    const parsed = z.array(editRegionSchema).safeParse(parseJsonOrUndefined(json));
    if (!parsed.success)
      throw new SpatiaError('STORE', `recorded session ${sessionId}: its erased regions cannot be read`);
    return parsed.data as EditRegion[];
  }

  /** The start snapshot's bytes from its manifest; STORE when a part is missing or damaged. */
  private assemble(sessionId: string, worldId: string, manifest: Uint8Array): Uint8Array {
    const damaged = (what: string): SpatiaError =>
      new SpatiaError('STORE', `recorded session ${sessionId}: the start snapshot's ${what}`);
    const checked = (hash: Buffer, rawBytes: number, data: unknown): Uint8Array => {
      if (!(data instanceof Uint8Array)) throw damaged(`part ${hash.toString('hex')} is missing`);
      const raw = new Uint8Array(inflateRawSync(data));
      if (raw.byteLength !== rawBytes || !sha256(raw).equals(hash))
        throw damaged(`part ${hash.toString('hex')} is damaged`);
      return raw;
    };
    const magic = new TextDecoder().decode(manifest.subarray(0, MANIFEST_REF_MAGIC.length));
    if (magic !== MANIFEST_REF_MAGIC) throw damaged('manifest reference is damaged');
    const ref = new BinaryReader(manifest.subarray(MANIFEST_REF_MAGIC.length), 'STORE', 'manifest reference');
    const manifestHash = Buffer.from(ref.bytes(32));
    const manifestBlob = this.db.value('SELECT data FROM snapshot_blobs WHERE hash = ?', manifestHash);
    const { parts, sealed } = decodeManifest(checked(manifestHash, ref.u32(), manifestBlob));
    // Parts are read many to a query: a world has thousands, and each query is a round trip on PostgreSQL.
    const blobs = dataByKey(
      this.db,
      'SELECT hash AS key, data FROM snapshot_blobs WHERE hash IN',
      [],
      parts.flatMap((p) => (p.kind === PART_BLOB ? [p.hash] : [])),
      (key) => Buffer.from(key as Uint8Array).toString('hex'),
    );
    const keyframes = dataByKey(
      this.db,
      'SELECT id AS key, data FROM keyframes WHERE world_id = ? AND id IN',
      [worldId],
      parts.flatMap((p) => (p.kind === PART_KEYFRAME ? [p.id] : [])),
      Number,
    );
    const bytes = parts.map((p): Uint8Array => {
      if (p.kind === PART_LITERAL) return p.bytes;
      if (p.kind === PART_BLOB) return checked(p.hash, p.rawBytes, blobs.get(p.hash.toString('hex')));
      const data = keyframes.get(p.id);
      if (!data) throw damaged(`keyframe ${p.id} is missing`);
      return new Uint8Array(inflateRawSync(data));
    });
    if (sealed) return sealSnapshot(bytes);
    let length = 0;
    for (const b of bytes) length += b.byteLength;
    const out = new Uint8Array(length);
    let o = 0;
    for (const b of bytes) {
      out.set(b, o);
      o += b.byteLength;
    }
    return out;
  }

  listSessions(): { id: string; worldId: string; player: string; startedAt: string; frames: number }[] {
    return this.db.all<{ id: string; worldId: string; player: string; startedAt: string; frames: number }>(
      `SELECT s.id, s.world_id AS "worldId", s.player, s.started_at AS "startedAt",
              (SELECT COUNT(*) FROM session_frames f WHERE f.session_id = s.id) AS frames
       FROM sessions s ORDER BY s.started_at`,
    );
  }

  *clips(id: string): Generator<RecordedClip> {
    for (const row of this.db.iterate<{ clip: string }>(
      'SELECT clip FROM session_clips WHERE session_id = ? ORDER BY idx',
      id,
    ))
      yield JSON.parse(row.clip) as RecordedClip;
  }

  *frames(id: string): Generator<{ index: number; clipIndex: number; rgbCrc: number; jpeg: Uint8Array }> {
    for (const row of this.db.iterate<{ idx: number; clip_idx: number; rgb_crc: number; jpeg: Uint8Array }>(
      'SELECT idx, clip_idx, rgb_crc, jpeg FROM session_frames WHERE session_id = ? ORDER BY idx',
      id,
    ))
      yield { index: row.idx, clipIndex: row.clip_idx, rgbCrc: row.rgb_crc, jpeg: new Uint8Array(row.jpeg) };
  }
}
