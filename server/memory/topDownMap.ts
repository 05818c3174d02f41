import type { Vec3 } from '../../shared/math/vec3.ts';
import * as layout from './voxelChunk.ts';
import type { VoxelGrid } from './voxelGrid.ts';

/** An orthographic view of the memory from above (+y), for maps and minimaps. */
export interface TopDownMap {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  /** World x of the left edge and z of the top edge, metres; pixels per metre. */
  readonly originX: number;
  readonly originZ: number;
  readonly pxPerM: number;
}

// Module-local copies: imported bindings can compile to getter calls in hot loops (see renderView.ts).
const STRIDE = layout.STRIDE;
const PX = layout.PX;
const PY = layout.PY;
const PZ = layout.PZ;
const CR = layout.CR;

/**
 * Draws the highest voxel per cell seen from above, dimmed with depth below the top so floors and
 * furniture read apart. Voxels above `ceilingM` (roofs, ceilings) are skipped so rooms stay open.
 * O(voxels).
 */
export function topDownMap(grid: VoxelGrid, pxPerM: number, ceilingM = 2.6, marginM = 0.5): TopDownMap {
  // Two tight passes over the records (extent, then drawing): a per-voxel callback made a map of a
  // 2.3 M-voxel memory take ~0.5 s on the main thread.
  const step = grid.positionStepM;
  const size = grid.chunkSizeM;
  let minX = Infinity,
    maxX = -Infinity,
    minZ = Infinity,
    maxZ = -Infinity,
    minY = Infinity;
  for (const c of grid.chunks()) {
    const oy = c.cy * size;
    if (c.count === 0 || oy > ceilingM) continue;
    const ox = c.cx * size,
      oz = c.cz * size;
    const d = c.data;
    for (let o = 0, end = c.count * STRIDE; o < end; o += STRIDE) {
      const y = oy + d[o + PY]! * step;
      if (y > ceilingM) continue;
      const x = ox + d[o + PX]! * step;
      const z = oz + d[o + PZ]! * step;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (z < minZ) minZ = z;
      if (z > maxZ) maxZ = z;
      if (y < minY) minY = y;
    }
  }
  if (!Number.isFinite(minX))
    return { width: 1, height: 1, rgb: new Uint8Array(3), originX: 0, originZ: 0, pxPerM };
  const originX = minX - marginM;
  const originZ = minZ - marginM;
  const width = Math.max(1, Math.ceil((maxX - minX + 2 * marginM) * pxPerM));
  const height = Math.max(1, Math.ceil((maxZ - minZ + 2 * marginM) * pxPerM));
  const top = new Float32Array(width * height).fill(-Infinity);
  const rgb = new Uint8Array(width * height * 3).fill(24);
  const span = Math.max(0.5, ceilingM - minY);
  for (const c of grid.chunks()) {
    const oy = c.cy * size;
    if (c.count === 0 || oy > ceilingM) continue;
    const ox = c.cx * size,
      oz = c.cz * size;
    const d = c.data;
    for (let o = 0, end = c.count * STRIDE; o < end; o += STRIDE) {
      const y = oy + d[o + PY]! * step;
      if (y > ceilingM) continue;
      const px = Math.floor((ox + d[o + PX]! * step - originX) * pxPerM);
      const pz = Math.floor((oz + d[o + PZ]! * step - originZ) * pxPerM);
      const p = pz * width + px;
      if (px < 0 || pz < 0 || px >= width || pz >= height || y <= top[p]!) continue;
      top[p] = y;
      const shade = (0.55 + (0.45 * (y - minY)) / span) / 256;
      rgb[p * 3] = Math.min(255, d[o + CR]! * shade);
      rgb[p * 3 + 1] = Math.min(255, d[o + CR + 1]! * shade);
      rgb[p * 3 + 2] = Math.min(255, d[o + CR + 2]! * shade);
    }
  }
  return { width, height, rgb, originX, originZ, pxPerM };
}

/** Draws a polyline of world positions (x, z used) onto a map, in place. */
export function drawPath(
  map: TopDownMap,
  points: readonly Vec3[],
  color: readonly [number, number, number],
): void {
  const put = (x: number, z: number): void => {
    const px = Math.round((x - map.originX) * map.pxPerM);
    const pz = Math.round((z - map.originZ) * map.pxPerM);
    if (px < 0 || pz < 0 || px >= map.width || pz >= map.height) return;
    map.rgb.set(color, (pz * map.width + px) * 3);
  };
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[2] - a[2]) * map.pxPerM * 2));
    for (let k = 0; k <= n; k++) put(a[0] + ((b[0] - a[0]) * k) / n, a[2] + ((b[2] - a[2]) * k) / n);
  }
}

/** Draws a filled square marker of `radiusPx` at a world position, in place. */
export function drawMarker(
  map: TopDownMap,
  p: Vec3,
  radiusPx: number,
  color: readonly [number, number, number],
): void {
  const cx = Math.round((p[0] - map.originX) * map.pxPerM);
  const cz = Math.round((p[2] - map.originZ) * map.pxPerM);
  for (let z = cz - radiusPx; z <= cz + radiusPx; z++) {
    for (let x = cx - radiusPx; x <= cx + radiusPx; x++) {
      if (x >= 0 && z >= 0 && x < map.width && z < map.height) map.rgb.set(color, (z * map.width + x) * 3);
    }
  }
}
