import { type EditOp, insideRegion, objectSurfacePoints, regionBounds } from '../../shared/edit/editOps.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { MAX_MIRROR_EVICTIONS, type MirrorAck } from '../../shared/protocol/events.ts';
import {
  MIRROR_POINT_BYTES,
  MIRROR_POSITION_STEPS,
  type MirrorBatch,
  type MirrorChunk,
  mirrorPointCoord,
} from '../../shared/protocol/mirrorCodec.ts';

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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
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

  /**
   * Shows an edit at once, before the server's chunks arrive (they replace these): erased points
   * go, recoloured ones change colour, a placed object's surface points join the chunks they fall in.
   */
  applyEdit(op: EditOp): MirrorChange {
    const added: HeldChunk[] = [];
    const removed: HeldChunk[] = [];
    const replace = (old: HeldChunk | undefined, next: HeldChunk): void => {
      if (old) {
        removed.push(old);
        this.points -= old.count;
      }
      this.chunks.set(next.id, next);
      this.points += next.count;
      added.push(next);
    };
    if (op.op === 'insert') {
      const any = this.chunks.values().next().value;
      if (!any) return { added, removed };
      const voxelM = any.cellM / 2 ** any.level;
      const sizeM = any.sizeM;
      const pts = objectSurfacePoints(op.object, voxelM);
      const byChunk = new Map<string, number[]>();
      for (let i = 0; i < pts.count; i++) {
        const x = pts.positions[i * 3]!,
          y = pts.positions[i * 3 + 1]!,
          z = pts.positions[i * 3 + 2]!;
        const cx = Math.floor(x / sizeM),
          cy = Math.floor(y / sizeM),
          cz = Math.floor(z / sizeM);
        const id = idOf(cx, cy, cz);
        let list = byChunk.get(id);
        if (!list) {
          list = [];
          byChunk.set(id, list);
        }
        const q = (v: number, c: number): number =>
          Math.min(MIRROR_POSITION_STEPS - 1, Math.floor((v / sizeM - c) * MIRROR_POSITION_STEPS));
        list.push(
          q(x, cx),
          q(y, cy),
          q(z, cz),
          pts.colors[i * 3]!,
          pts.colors[i * 3 + 1]!,
          pts.colors[i * 3 + 2]!,
        );
      }
      for (const [id, list] of byChunk) {
        const [cx, cy, cz] = id.split(',').map(Number) as [number, number, number];
        const old = this.chunks.get(id);
        const extra = Uint8Array.from(list);
        const points = old ? concat(old.points, extra) : extra;
        replace(old, {
          cx,
          cy,
          cz,
          revision: old?.revision ?? 0,
          level: old?.level ?? 0,
          points,
          id,
          sizeM,
          cellM: old?.cellM ?? voxelM,
          count: points.length / MIRROR_POINT_BYTES,
        });
      }
      return { added, removed };
    }
    const b = regionBounds(op.region);
    for (const c of [...this.chunks.values()]) {
      const s = c.sizeM;
      if (
        (c.cx + 1) * s < b.min[0] ||
        c.cx * s > b.max[0] ||
        (c.cy + 1) * s < b.min[1] ||
        c.cy * s > b.max[1] ||
        (c.cz + 1) * s < b.min[2] ||
        c.cz * s > b.max[2]
      )
        continue;
      const kept: number[] = [];
      let changed = false;
      const p = c.points;
      for (let o = 0; o < p.length; o += MIRROR_POINT_BYTES) {
        const x = mirrorPointCoord(c.cx, p[o]!, s);
        const y = mirrorPointCoord(c.cy, p[o + 1]!, s);
        const z = mirrorPointCoord(c.cz, p[o + 2]!, s);
        const inside = insideRegion(op.region, x, y, z);
        if (inside && op.op === 'erase') {
          changed = true;
          continue;
        }
        const r = p[o + 3]!,
          g = p[o + 4]!,
          bl = p[o + 5]!;
        if (inside && op.op === 'recolor') {
          changed = true;
          // Keeps the point's brightness (the server keeps it relative to the region's mean).
          const gain = (0.299 * r + 0.587 * g + 0.114 * bl) / 128;
          kept.push(p[o]!, p[o + 1]!, p[o + 2]!, ...op.color.map((v) => Math.min(255, Math.round(v * gain))));
        } else kept.push(p[o]!, p[o + 1]!, p[o + 2]!, r, g, bl);
      }
      if (!changed) continue;
      this.chunks.delete(c.id);
      const points = Uint8Array.from(kept);
      if (points.length === 0) {
        removed.push(c);
        this.points -= c.count;
        continue;
      }
      replace(c, { ...c, points, count: points.length / MIRROR_POINT_BYTES });
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
