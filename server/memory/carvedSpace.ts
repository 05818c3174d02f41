import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { type Bounds, type EditRegion, insideRegion, regionBounds } from '../../shared/edit/editOps.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { CHUNK_BITS, chunkKeyOf } from './voxelChunk.ts';
import type { CarvedRegion, VoxelGrid } from './voxelGrid.ts';

/*
 * Erased space: a region a player erased stays empty memory. Fusion writes no voxel whose centre
 * lies in it (a generated frame may still show something there; it is not remembered), and the
 * frames a clip is conditioned on (reference keyframes, preceding frames) lose their depth there,
 * so what was erased is not warped back into view from before the edit. Undo lifts it.
 */

/** The region in voxel units (what voxel centres are tested against). */
export function regionInVoxels(region: EditRegion, voxelSizeM: number): EditRegion {
  const s = 1 / voxelSizeM;
  const v = (p: Vec3): Vec3 => [p[0] * s, p[1] * s, p[2] * s];
  switch (region.shape) {
    case 'box':
      return { shape: 'box', min: v(region.min), max: v(region.max) };
    case 'sphere':
      return { shape: 'sphere', center: v(region.center), radius: region.radius * s };
    case 'stroke':
      return { shape: 'stroke', points: region.points.map(v), radius: region.radius * s };
  }
}

/** Calls `fn` with the coordinates and key of every chunk the bounds reach into. */
export function forEachChunkIn(
  grid: VoxelGrid,
  b: Bounds,
  fn: (cx: number, cy: number, cz: number, key: number) => void,
): void {
  const inv = 1 / grid.chunkSizeM;
  const lo = b.min.map((v) => Math.floor(v * inv));
  const hi = b.max.map((v) => Math.floor(v * inv));
  for (let cx = lo[0]!; cx <= hi[0]!; cx++)
    for (let cy = lo[1]!; cy <= hi[1]!; cy++)
      for (let cz = lo[2]!; cz <= hi[2]!; cz++) fn(cx, cy, cz, chunkKeyOf(cx, cy, cz));
}

/** Keeps `region` empty from now on; returns the handle `uncarve` takes. */
export function carve(grid: VoxelGrid, region: EditRegion): CarvedRegion {
  const c: CarvedRegion = {
    world: region,
    voxels: regionInVoxels(region, grid.voxelSizeM),
    bounds: regionBounds(region),
  };
  grid.carvedRegions.add(c);
  forEachChunkIn(grid, c.bounds, (_x, _y, _z, key) => {
    const list = grid.carvedByChunk.get(key) ?? [];
    list.push(c.voxels);
    grid.carvedByChunk.set(key, list);
    const chunk = grid.getChunk(key);
    if (chunk) chunk.carved = list;
  });
  return c;
}

/** Lets fusion write into a carved region again (undo of an erase). */
export function uncarve(grid: VoxelGrid, c: CarvedRegion): void {
  if (!grid.carvedRegions.delete(c)) return;
  forEachChunkIn(grid, c.bounds, (_x, _y, _z, key) => {
    const list = grid.carvedByChunk.get(key)?.filter((r) => r !== c.voxels);
    const next = list && list.length > 0 ? list : undefined;
    if (next) grid.carvedByChunk.set(key, next);
    else grid.carvedByChunk.delete(key);
    const chunk = grid.getChunk(key);
    if (chunk) chunk.carved = next;
  });
}

/** Whether voxel (vx, vy, vz) has its centre in one of `regions` (voxel units). */
export function isCarvedVoxel(regions: readonly EditRegion[], vx: number, vy: number, vz: number): boolean {
  for (const r of regions) if (insideRegion(r, vx + 0.5, vy + 0.5, vz + 0.5)) return true;
  return false;
}

/** Whether the voxel holding the world point lies in erased space. */
export function isCarvedPoint(grid: VoxelGrid, x: number, y: number, z: number): boolean {
  const inv = 1 / grid.voxelSizeM;
  const vx = Math.floor(x * inv),
    vy = Math.floor(y * inv),
    vz = Math.floor(z * inv);
  const list = grid.carvedByChunk.get(chunkKeyOf(vx >> CHUNK_BITS, vy >> CHUNK_BITS, vz >> CHUNK_BITS));
  return list !== undefined && isCarvedVoxel(list, vx, vy, vz);
}

/**
 * The frame's depth with 0 wherever its surface lies in erased space (a reference keyframe or a
 * preceding frame from before an erase); undefined when no pixel does. `reachM`: regions farther
 * from the camera than this are not looked at.
 */
export function maskCarvedDepth(
  grid: VoxelGrid,
  depth: Float32Array,
  pose: Pose,
  k: Intrinsics,
  reachM: number,
): Float32Array | undefined {
  if (grid.carvedRegions.size === 0) return undefined;
  const p = pose.position;
  const near = [...grid.carvedRegions].filter((c) => {
    const b = c.bounds;
    const dx = Math.max(b.min[0] - p[0], 0, p[0] - b.max[0]);
    const dy = Math.max(b.min[1] - p[1], 0, p[1] - b.max[1]);
    const dz = Math.max(b.min[2] - p[2], 0, p[2] - b.max[2]);
    return Math.hypot(dx, dy, dz) <= reachM;
  });
  if (near.length === 0) return undefined;
  const r = pose.rotation;
  let out: Float32Array | undefined;
  for (let v = 0, i = 0; v < k.height; v++) {
    const y = (v - k.cy) / k.fy;
    for (let u = 0; u < k.width; u++, i++) {
      const d = depth[i]!;
      if (!(d > 0)) continue;
      const x = (u - k.cx) / k.fx;
      const wx = (r[0] * x + r[1] * y + r[2]) * d + p[0];
      const wy = (r[3] * x + r[4] * y + r[5]) * d + p[1];
      const wz = (r[6] * x + r[7] * y + r[8]) * d + p[2];
      for (const c of near) {
        const b = c.bounds;
        if (
          wx < b.min[0] ||
          wy < b.min[1] ||
          wz < b.min[2] ||
          wx > b.max[0] ||
          wy > b.max[1] ||
          wz > b.max[2]
        )
          continue;
        if (!insideRegion(c.world, wx, wy, wz)) continue;
        out ??= depth.slice();
        out[i] = 0;
        break;
      }
    }
  }
  return out;
}
