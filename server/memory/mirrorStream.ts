import type { Vec3 } from '../../shared/math/vec3.ts';
import type { MirrorAck } from '../../shared/protocol/events.ts';
import {
  encodeMirrorBatch,
  MIRROR_BATCH_HEADER_BYTES,
  MIRROR_RADIUS_M,
  type MirrorChunk,
  mirrorChunkBytes,
} from '../../shared/protocol/mirrorCodec.ts';
import { mirrorPointCount, packMirrorPoints } from './mirrorPack.ts';
import { CHUNK_VOXELS, chunkKeyOf, MAX_LOD, type VoxelChunk } from './voxelChunk.ts';
import type { VoxelGrid } from './voxelGrid.ts';

/** A chunk nearer than LEVEL_LIMITS_M[l] goes at level l (beyond the last: MAX_LOD). */
const LEVEL_LIMITS_M = [3, 8];
/** Largest batch: a frame queued behind one waits for at most this many bytes. */
export const MAX_MIRROR_BATCH_BYTES = 48 * 1024;
/** The budget may save up this much time of sending for a burst (or one batch, if more). */
const BURST_S = 0.25;
/**
 * A changed chunk goes again after this long even when its change is small (fusing the same
 * surfaces again nudges means and colours all the time: a fifth of a walk's bytes at 5 s).
 */
const REFRESH_AFTER_MS = 15_000;
/** A chunk that grew or shrank by more than this fraction (or 16 voxels) goes again soon. */
const GROWTH_RESEND = 0.25;
/** ... but not sooner than this after its last send. */
const MIN_RESEND_MS = 500;
/** Chunks outside the view are worth this much less than those in it (as if this much farther). */
const OUT_OF_VIEW_FACTOR = 3;
/** Cosine of the half-angle of the cone counted as "in view" (wider than the camera, for turns). */
const IN_VIEW_COS = Math.cos((60 * Math.PI) / 180);

interface SentChunk {
  readonly cx: number;
  readonly cy: number;
  readonly cz: number;
  readonly revision: number;
  readonly level: number;
  readonly count: number;
  readonly atMs: number;
}

/** Why a chunk goes: the client lacks it, holds it too coarsely, holds it stale (a lot, a little), or it is gone. */
type Cause = 'removed' | 'edited' | 'new' | 'finer' | 'changed' | 'refresh';
/** Lower goes first. */
const URGENCY: Record<Cause, number> = { removed: 0, edited: 0, new: 1, finer: 2, changed: 2, refresh: 3 };

interface Candidate {
  readonly chunk: VoxelChunk | undefined;
  readonly key: number;
  readonly cause: Cause;
  /** Distance, scaled up out of view: lower goes first within one urgency. */
  readonly score: number;
  readonly level: number;
}

/** Level of detail for a chunk at `distanceM`. */
export const mirrorLevelAt = (distanceM: number): number => {
  for (let l = 0; l < LEVEL_LIMITS_M.length; l++) if (distanceM < LEVEL_LIMITS_M[l]!) return l;
  return MAX_LOD;
};

/**
 * One player's stream of the memory mirror: which chunks the client holds (at which revision and
 * level), and the next batch to send. New chunks go first, nearest and in view first, at the
 * coarsest level; then each goes again at the level of detail its distance calls for (nearest
 * first), again when the player comes close enough for a finer level, when it changed a lot, or
 * (changed a little) after REFRESH_AFTER_MS. Sending is paced
 * by a token bucket of `kbps` and one unacknowledged batch at a time: a client that reads slowly
 * gets fewer, later updates, never a backlog. Lifecycle: constructed per player session, `pump`ed
 * by it while frames are not waiting, `acknowledge`d by the client, dropped with the session.
 */
export class MirrorStream {
  private readonly sent = new Map<number, SentChunk>();
  /** Chunks an edit changed: sent again first, whatever their growth or age. */
  private readonly edited = new Set<number>();
  private seq = 0;
  private awaiting: number | undefined;
  private tokens: number;
  private readonly rateBytesPerMs: number;
  private readonly burstBytes: number;
  private clockMs: number;
  /** Bytes (on the wire) and batches sent so far. */
  bytesSent = 0;
  batchesSent = 0;

  constructor(
    private readonly grid: VoxelGrid,
    /** Puts a batch on the wire; returns the bytes it took there (compressed), which the budget counts. */
    private readonly send: (bytes: Uint8Array) => number,
    kbps: number,
    nowMs: number,
  ) {
    if (!(kbps > 0)) throw new RangeError('the mirror budget must be positive (kbit/s)');
    this.rateBytesPerMs = (kbps * 1000) / 8 / 1000;
    this.burstBytes = Math.max(MAX_MIRROR_BATCH_BYTES, this.rateBytesPerMs * BURST_S * 1000);
    this.tokens = this.burstBytes;
    this.clockMs = nowMs;
  }

  /** Chunks the client holds (as far as the server knows). */
  /** An edit changed these chunks: the ones the client holds go again before anything else. */
  markEdited(keys: Iterable<number>): void {
    for (const key of keys) if (this.sent.has(key)) this.edited.add(key);
  }

  get chunksHeld(): number {
    return this.sent.size;
  }

  /** Whether a batch waits for its acknowledgement. */
  get waiting(): boolean {
    return this.awaiting !== undefined;
  }

  /**
   * Sends the next batch if the last one was acknowledged and the budget allows; returns whether
   * it sent. `forward` is the camera's viewing direction (unit).
   */
  pump(eye: Vec3, forward: Vec3, nowMs: number): boolean {
    this.tokens = Math.min(this.burstBytes, this.tokens + (nowMs - this.clockMs) * this.rateBytesPerMs);
    this.clockMs = nowMs;
    if (this.awaiting !== undefined || this.tokens <= 0) return false;
    const candidates = this.candidates(eye, forward, nowMs);
    if (candidates.length === 0) return false;
    candidates.sort((a, b) => URGENCY[a.cause] - URGENCY[b.cause] || a.score - b.score);
    const budget = Math.min(MAX_MIRROR_BATCH_BYTES, this.tokens);
    const chunks: MirrorChunk[] = [];
    let bytes = MIRROR_BATCH_HEADER_BYTES;
    for (const c of candidates) {
      const size = mirrorChunkBytes(c.chunk ? mirrorPointCount(c.chunk, c.level) : 0);
      // One chunk larger than the whole budget goes alone once the bucket is full.
      if (bytes + size > budget && !(chunks.length === 0 && this.tokens >= this.burstBytes)) {
        if (chunks.length === 0) return false;
        continue;
      }
      const points = c.chunk ? packMirrorPoints(c.chunk, c.level) : new Uint8Array(0);
      const [cx, cy, cz] = c.chunk ? [c.chunk.cx, c.chunk.cy, c.chunk.cz] : this.coordsOf(c.key);
      chunks.push({ cx, cy, cz, revision: c.chunk?.revision ?? 0, level: c.level, points });
      bytes += size;
      if (c.chunk)
        this.sent.set(c.key, {
          cx,
          cy,
          cz,
          revision: c.chunk.revision,
          level: c.level,
          count: c.chunk.count,
          atMs: nowMs,
        });
      else this.sent.delete(c.key);
      this.edited.delete(c.key);
      if (bytes >= budget) break;
    }
    const seq = this.seq++ >>> 0;
    const encoded = encodeMirrorBatch({
      seq,
      voxelSizeM: this.grid.voxelSizeM,
      chunkVoxels: CHUNK_VOXELS,
      chunks,
    });
    this.awaiting = seq;
    const wire = this.send(encoded);
    this.tokens -= wire;
    this.bytesSent += wire;
    this.batchesSent++;
    return true;
  }

  /**
   * The client's acknowledgement: frees the window (when it names the waiting batch) and forgets
   * the chunks it dropped. Returns an error reason (and changes nothing), or undefined.
   */
  acknowledge(ack: MirrorAck): string | undefined {
    if (ack.seq !== undefined && ack.seq !== this.awaiting)
      return this.awaiting === undefined
        ? `no mirror batch is waiting for an acknowledgement (got ${ack.seq})`
        : `mirror batch ${this.awaiting} is waiting, not ${ack.seq}`;
    if (ack.seq !== undefined) this.awaiting = undefined;
    for (const [cx, cy, cz] of ack.evicted) this.sent.delete(chunkKeyOf(cx, cy, cz));
    return undefined;
  }

  private coordsOf(key: number): [number, number, number] {
    const s = this.sent.get(key)!;
    return [s.cx, s.cy, s.cz];
  }

  /** Chunks within the radius the client lacks, holds too coarsely or holds stale; and removals. */
  private candidates(eye: Vec3, forward: Vec3, nowMs: number): Candidate[] {
    const size = this.grid.chunkSizeM;
    const out: Candidate[] = [];
    const r2 = MIRROR_RADIUS_M * MIRROR_RADIUS_M;
    const distanceOf = (cx: number, cy: number, cz: number): { d: number; score: number } => {
      const dx = (cx + 0.5) * size - eye[0];
      const dy = (cy + 0.5) * size - eye[1];
      const dz = (cz + 0.5) * size - eye[2];
      const d2 = dx * dx + dy * dy + dz * dz;
      const d = Math.sqrt(d2);
      const inView = d < size || dx * forward[0] + dy * forward[1] + dz * forward[2] > IN_VIEW_COS * d;
      return { d: d2 <= r2 ? d : Number.POSITIVE_INFINITY, score: inView ? d : d * OUT_OF_VIEW_FACTOR };
    };
    for (const chunk of this.grid.chunks()) {
      const { d, score } = distanceOf(chunk.cx, chunk.cy, chunk.cz);
      if (d === Number.POSITIVE_INFINITY) continue;
      const held = this.sent.get(chunk.key);
      if (chunk.count === 0) {
        if (held) out.push({ chunk: undefined, key: chunk.key, cause: 'removed', score, level: 0 });
        continue;
      }
      const level = mirrorLevelAt(d);
      if (!held) {
        // Coarsest first: everything around the player arrives quickly, then sharpens nearest first.
        out.push({ chunk, key: chunk.key, cause: 'new', score, level: MAX_LOD });
        continue;
      }
      if (level < held.level) {
        out.push({ chunk, key: chunk.key, cause: 'finer', score, level });
        continue;
      }
      if (held.revision === chunk.revision) continue;
      if (this.edited.has(chunk.key)) {
        out.push({ chunk, key: chunk.key, cause: 'edited', score, level: held.level });
        continue;
      }
      const age = nowMs - held.atMs;
      const grew = Math.abs(chunk.count - held.count) > Math.max(16, held.count * GROWTH_RESEND);
      if (grew && age >= MIN_RESEND_MS) out.push({ chunk, key: chunk.key, cause: 'changed', score, level });
      else if (age >= REFRESH_AFTER_MS) out.push({ chunk, key: chunk.key, cause: 'refresh', score, level });
    }
    // Chunks the client holds that the memory no longer has within reach (removed, not evicted far away).
    for (const [key, held] of this.sent) {
      if (this.grid.hasChunk(key)) continue;
      const { d, score } = distanceOf(held.cx, held.cy, held.cz);
      if (d !== Number.POSITIVE_INFINITY)
        out.push({ chunk: undefined, key, cause: 'removed', score, level: 0 });
    }
    return out;
  }
}
