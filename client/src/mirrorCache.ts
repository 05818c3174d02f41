import type { Vec3 } from '../../shared/math/vec3.ts';
import { MAX_MIRROR_EVICTIONS, type MirrorAck } from '../../shared/protocol/events.ts';
import { MIRROR_POINT_BYTES, type MirrorBatch, type MirrorChunk } from '../../shared/protocol/mirrorCodec.ts';

/** A chunk of the memory the client holds. */
export interface HeldChunk extends MirrorChunk {
  readonly id: string;
  /** Edge of the chunk, metres. */
  readonly sizeM: number;
  /** Edge of the cell each point stands for (voxel × 2^level), metres. */
  readonly cellM: number;
  /** Points (MIRROR_POINT_BYTES each). */
  readonly count: number;
}

/** What one batch changed: chunks to draw (new or replacing `removed` ones) and chunks gone. */
export interface MirrorChange {
  readonly added: readonly HeldChunk[];
  readonly removed: readonly HeldChunk[];
}

const idOf = (cx: number, cy: number, cz: number): string => `${cx},${cy},${cz}`;

/**
 * The client's copy of the memory around the player (no rendering here): applies batches, drops
 * chunks that fell behind (MIRROR_KEEP_M) and tells the server which, in the next acknowledgement.
 */
export class MirrorCache {
  readonly chunks = new Map<string, HeldChunk>();
  private evicted: [number, number, number][] = [];
  /** Points held. */
  points = 0;
  /** Bytes of batches applied. */
  bytes = 0;

  apply(batch: MirrorBatch, bytes = 0): MirrorChange {
    this.bytes += bytes;
    const added: HeldChunk[] = [];
    const removed: HeldChunk[] = [];
    for (const c of batch.chunks) {
      const id = idOf(c.cx, c.cy, c.cz);
      const old = this.chunks.get(id);
      if (old) {
        removed.push(old);
        this.chunks.delete(id);
        this.points -= old.count;
      }
      if (c.points.length === 0) continue;
      const held: HeldChunk = {
        ...c,
        id,
        sizeM: batch.voxelSizeM * batch.chunkVoxels,
        cellM: batch.voxelSizeM * 2 ** c.level,
        count: c.points.length / MIRROR_POINT_BYTES,
      };
      this.chunks.set(id, held);
      this.points += held.count;
      added.push(held);
    }
    return { added, removed };
  }

  /** Drops chunks whose centre is farther than `keepM` from `eye`; returns them. */
  evictFarther(eye: Vec3, keepM: number): HeldChunk[] {
    const out: HeldChunk[] = [];
    for (const c of this.chunks.values()) {
      const size = c.sizeM;
      const d = Math.hypot(
        (c.cx + 0.5) * size - eye[0],
        (c.cy + 0.5) * size - eye[1],
        (c.cz + 0.5) * size - eye[2],
      );
      if (d <= keepM) continue;
      this.chunks.delete(c.id);
      this.points -= c.count;
      this.evicted.push([c.cx, c.cy, c.cz]);
      out.push(c);
    }
    return out;
  }

  /** A report of dropped chunks when some wait to be told and no batch is there to acknowledge. */
  report(): MirrorAck | undefined {
    return this.evicted.length > 0 ? { evicted: this.evicted.splice(0, MAX_MIRROR_EVICTIONS) } : undefined;
  }

  /** The acknowledgement of batch `seq`, naming chunks dropped since the last one (at most the protocol's limit; the rest go next time). */
  ack(seq: number): MirrorAck {
    return { seq, evicted: this.evicted.splice(0, MAX_MIRROR_EVICTIONS) };
  }
}
