import type { VoxelChunk } from '../../server/memory/voxelChunk.ts';
import type { VoxelGrid } from '../../server/memory/voxelGrid.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';

/** Distance from `eye` to the centre of chunk (cx, cy, cz): what the mirror stream ranks and levels chunks by. */
export const chunkDistance = (eye: Vec3, cx: number, cy: number, cz: number, sizeM: number): number =>
  Math.hypot((cx + 0.5) * sizeM - eye[0], (cy + 0.5) * sizeM - eye[1], (cz + 0.5) * sizeM - eye[2]);

/** The grid's chunks with voxels whose centre lies within `radiusM` of `eye`, and that distance. */
export function chunksWithin(
  grid: VoxelGrid,
  eye: Vec3,
  radiusM: number,
): { chunk: VoxelChunk; distanceM: number }[] {
  return [...grid.chunks()]
    .filter((chunk) => chunk.count > 0)
    .map((chunk) => ({ chunk, distanceM: chunkDistance(eye, chunk.cx, chunk.cy, chunk.cz, grid.chunkSizeM) }))
    .filter((c) => c.distanceM <= radiusM);
}
