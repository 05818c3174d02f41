import { MIRROR_POINT_BYTES, MIRROR_POSITION_STEPS } from '../../shared/protocol/mirrorCodec.ts';
import { CB, CG, CR, LOD_STRIDE, MAX_LOD, PX, PY, PZ, STRIDE, type VoxelChunk } from './voxelChunk.ts';

/** Record position words span the chunk edge in 2^16 steps; the mirror keeps the top bits. */
const POSITION_SHIFT = 16 - Math.log2(MIRROR_POSITION_STEPS);

/** Points a chunk has at level of detail `level` (its voxels, or its cached merged cells). */
export const mirrorPointCount = (chunk: VoxelChunk, level: number): number =>
  level === 0 ? chunk.count : chunk.lod(level).count;

/**
 * A chunk's points for the memory mirror at level of detail `level` (0: every voxel; 1..MAX_LOD:
 * the chunk's cached merged cells), MIRROR_POINT_BYTES each: position inside the chunk in
 * MIRROR_POSITION_STEPS per edge, then 8-bit colour (rounded from 8.8 fixed point).
 */
export function packMirrorPoints(chunk: VoxelChunk, level: number): Uint8Array {
  if (!(Number.isInteger(level) && level >= 0 && level <= MAX_LOD))
    throw new RangeError(`mirror level must be 0..${MAX_LOD}, got ${level}`);
  const lod = level === 0 ? undefined : chunk.lod(level);
  const data = lod ? lod.data : chunk.data;
  const stride = lod ? LOD_STRIDE : STRIDE;
  const count = lod ? lod.count : chunk.count;
  const out = new Uint8Array(count * MIRROR_POINT_BYTES);
  for (let s = 0, i = 0, o = 0; s < count; s++, i += stride, o += MIRROR_POINT_BYTES) {
    out[o] = data[i + PX]! >> POSITION_SHIFT;
    out[o + 1] = data[i + PY]! >> POSITION_SHIFT;
    out[o + 2] = data[i + PZ]! >> POSITION_SHIFT;
    out[o + 3] = Math.min(255, (data[i + CR]! + 128) >> 8);
    out[o + 4] = Math.min(255, (data[i + CG]! + 128) >> 8);
    out[o + 5] = Math.min(255, (data[i + CB]! + 128) >> 8);
  }
  return out;
}
