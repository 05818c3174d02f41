import type { Vec3 } from '../../shared/math/vec3.ts';
import { MIRROR_POINT_BYTES, MIRROR_POSITION_STEPS } from '../../shared/protocol/mirrorCodec.ts';
import type { HeldChunk } from './mirrorCache.ts';

/** A surface the pick ray met: the point and its distance along the ray, metres. */
export interface Pick {
  readonly point: Vec3;
  readonly distanceM: number;
}

/** Nearer than this the ray starts (the player's own head). */
const MIN_DISTANCE_M = 0.3;

/**
 * The first surface of the client's memory mirror along a ray (origin, unit direction): the
 * nearest point that lies within three quarters of its cell of the ray. Chunks are tried in the
 * order the ray enters them, and the search stops at the first chunk entered beyond the best hit.
 */
export function pickMirror(
  chunks: Iterable<HeldChunk>,
  origin: Vec3,
  dir: Vec3,
  maxDistanceM: number,
): Pick | undefined {
  const entered: { c: HeldChunk; t: number }[] = [];
  for (const c of chunks) {
    const s = c.sizeM;
    let t0 = MIN_DISTANCE_M;
    let t1 = maxDistanceM;
    const lo = [c.cx * s, c.cy * s, c.cz * s];
    for (let a = 0; a < 3 && t0 <= t1; a++) {
      const d = dir[a]!;
      if (Math.abs(d) < 1e-12) {
        if (origin[a]! < lo[a]! - c.cellM || origin[a]! > lo[a]! + s + c.cellM) t1 = -1;
        continue;
      }
      // Grown by a cell: a point near the chunk's face still counts within its cell.
      const ta = (lo[a]! - c.cellM - origin[a]!) / d;
      const tb = (lo[a]! + s + c.cellM - origin[a]!) / d;
      t0 = Math.max(t0, Math.min(ta, tb));
      t1 = Math.min(t1, Math.max(ta, tb));
    }
    if (t0 <= t1) entered.push({ c, t: t0 });
  }
  entered.sort((a, b) => a.t - b.t);
  let best = Number.POSITIVE_INFINITY;
  for (const { c, t } of entered) {
    if (t > best) break;
    const s = c.sizeM;
    const step = s / MIRROR_POSITION_STEPS;
    const ox = c.cx * s - origin[0] + step / 2,
      oy = c.cy * s - origin[1] + step / 2,
      oz = c.cz * s - origin[2] + step / 2;
    const r2 = (0.75 * c.cellM) ** 2;
    const p = c.points;
    for (let o = 0; o < p.length; o += MIRROR_POINT_BYTES) {
      const x = ox + p[o]! * step,
        y = oy + p[o + 1]! * step,
        z = oz + p[o + 2]! * step;
      const along = x * dir[0] + y * dir[1] + z * dir[2];
      if (along < MIN_DISTANCE_M || along >= best) continue;
      if (x * x + y * y + z * z - along * along < r2) best = along;
    }
  }
  if (!Number.isFinite(best)) return undefined;
  return {
    point: [origin[0] + dir[0] * best, origin[1] + dir[1] * best, origin[2] + dir[2] * best],
    distanceM: best,
  };
}
