import type { Vec3 } from '../../shared/math/vec3.ts';
import { CR, PX, PY, PZ, STRIDE } from './voxelChunk.ts';
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

/**
 * Draws the highest voxel per cell seen from above, dimmed with depth below the top so floors and
 * furniture read apart. Voxels above `ceilingM` (roofs, ceilings) are skipped so rooms stay open.
 * O(voxels).
 */
export function topDownMap(grid: VoxelGrid, pxPerM: number, ceilingM = 2.6, marginM = 0.5): TopDownMap {
  let minX = Infinity,
    maxX = -Infinity,
    minZ = Infinity,
    maxZ = -Infinity,
    minY = Infinity;
  grid.forEachVoxel((v) => {
    if (v.y > ceilingM) return;
    minX = Math.min(minX, v.x);
    maxX = Math.max(maxX, v.x);
    minZ = Math.min(minZ, v.z);
    maxZ = Math.max(maxZ, v.z);
    minY = Math.min(minY, v.y);
  });
  if (!Number.isFinite(minX))
    return { width: 1, height: 1, rgb: new Uint8Array(3), originX: 0, originZ: 0, pxPerM };
  const originX = minX - marginM;
  const originZ = minZ - marginM;
  const width = Math.max(1, Math.ceil((maxX - minX + 2 * marginM) * pxPerM));
  const height = Math.max(1, Math.ceil((maxZ - minZ + 2 * marginM) * pxPerM));
  const top = new Float32Array(width * height).fill(-Infinity);
  const rgb = new Uint8Array(width * height * 3).fill(24);
  const step = grid.positionStepM;
  const span = Math.max(0.5, ceilingM - minY);
  for (const c of grid.chunks()) {
    const ox = c.cx * grid.chunkSizeM,
      oy = c.cy * grid.chunkSizeM,
      oz = c.cz * grid.chunkSizeM;
    const d = c.data;
    for (let o = 0; o < c.count * STRIDE; o += STRIDE) {
      const y = oy + d[o + PY]! * step;
      if (y > ceilingM) continue;
      const px = Math.floor((ox + d[o + PX]! * step - originX) * pxPerM);
      const pz = Math.floor((oz + d[o + PZ]! * step - originZ) * pxPerM);
      const p = pz * width + px;
      if (px < 0 || pz < 0 || px >= width || pz >= height || y <= top[p]!) continue;
      top[p] = y;
      const shade = 0.55 + (0.45 * (y - minY)) / span;
      for (let ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = Math.min(255, (d[o + CR + ch]! / 256) * shade);
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
