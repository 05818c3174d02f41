import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { chunkKeyOf, FREE_CELL_VOXELS, FREE_CELLS_PER_EDGE, type VoxelChunk } from './voxelChunk.ts';
import { FUSE_MAX_DEPTH_M, type VoxelGrid } from './voxelGrid.ts';

/**
 * Free space: the part of the world the memory has seen to be empty. Every fused frame carves the
 * cells its rays passed through before their surfaces (as occupancy mapping and TSDF integration
 * do); a view of the memory reports, per pixel, the camera depth up to which its ray crosses only
 * known-free cells. Cells are FREE_CELL_VOXELS³ voxels (see VoxelChunk.cells), a surface in a cell
 * keeps it from being free, and both passes trace a sparse fan of rays (one per block of pixels)
 * with a 3D DDA over cells, so their cost does not grow with the frame size.
 */

/** Rays traced across the frame's width, carving and measuring alike (rows follow the aspect). */
const FREE_RAYS_ACROSS = 48;
/** Cell coordinates → chunk coordinates. */
const CELL_TO_CHUNK = Math.log2(FREE_CELLS_PER_EDGE);
const CELL_MASK = FREE_CELLS_PER_EDGE - 1;

/** Pixels between traced rays for a frame `width` pixels wide. */
const freeRayStride = (width: number): number => Math.max(1, Math.round(width / FREE_RAYS_ACROSS));

/** Edge of a free-space cell, metres. */
export const freeCellM = (grid: VoxelGrid): number => grid.voxelSizeM * FREE_CELL_VOXELS;

/**
 * How far short of its surface a ray stops carving: more than a cell's diagonal, so the cell
 * holding the surface point is never carved, and 3 % of the depth for depth noise.
 */
const carveMargin = (depthM: number, cellM: number): number => Math.max(2 * cellM, 0.03 * depthM);

/**
 * How far (camera depth) a generated surface may lie from the memory's own surface at its pixel and
 * still be that surface, not a new one in free space: the carve margin, as carving stops that short.
 */
const freeSpaceTolerance = carveMargin;

/** Per-ray DDA state over cells; reused (the passes are synchronous). */
const ray = { ix: 0, iy: 0, iz: 0, sx: 0, sy: 0, sz: 0, tx: 0, ty: 0, tz: 0, dx: 0, dy: 0, dz: 0 };

/**
 * Starts a DDA at the camera (cell units `o`) along camera ray (`cxr`, `cyr`, 1) rotated by `r` and
 * scaled to cells: the ray parameter stays the camera depth in metres.
 */
function startRay(
  ox: number,
  oy: number,
  oz: number,
  r: Pose['rotation'],
  inv: number,
  cxr: number,
  cyr: number,
): void {
  const dx = (r[0] * cxr + r[1] * cyr + r[2]) * inv;
  const dy = (r[3] * cxr + r[4] * cyr + r[5]) * inv;
  const dz = (r[6] * cxr + r[7] * cyr + r[8]) * inv;
  ray.ix = Math.floor(ox);
  ray.iy = Math.floor(oy);
  ray.iz = Math.floor(oz);
  ray.sx = dx > 0 ? 1 : -1;
  ray.sy = dy > 0 ? 1 : -1;
  ray.sz = dz > 0 ? 1 : -1;
  ray.dx = dx === 0 ? Number.POSITIVE_INFINITY : Math.abs(1 / dx);
  ray.dy = dy === 0 ? Number.POSITIVE_INFINITY : Math.abs(1 / dy);
  ray.dz = dz === 0 ? Number.POSITIVE_INFINITY : Math.abs(1 / dz);
  ray.tx = dx > 0 ? (ray.ix + 1 - ox) / dx : dx < 0 ? (ray.ix - ox) / dx : Number.POSITIVE_INFINITY;
  ray.ty = dy > 0 ? (ray.iy + 1 - oy) / dy : dy < 0 ? (ray.iy - oy) / dy : Number.POSITIVE_INFINITY;
  ray.tz = dz > 0 ? (ray.iz + 1 - oz) / dz : dz < 0 ? (ray.iz - oz) / dz : Number.POSITIVE_INFINITY;
}

/** Moves the DDA into the next cell; returns the ray parameter at which it enters it. */
function stepRay(): number {
  if (ray.tx < ray.ty && ray.tx < ray.tz) {
    const t = ray.tx;
    ray.ix += ray.sx;
    ray.tx += ray.dx;
    return t;
  }
  if (ray.ty < ray.tz) {
    const t = ray.ty;
    ray.iy += ray.sy;
    ray.ty += ray.dy;
    return t;
  }
  const t = ray.tz;
  ray.iz += ray.sz;
  ray.tz += ray.dz;
  return t;
}

const cellIndex = (ix: number, iy: number, iz: number): number =>
  ((ix & CELL_MASK) << (2 * CELL_TO_CHUNK)) | ((iy & CELL_MASK) << CELL_TO_CHUNK) | (iz & CELL_MASK);

/**
 * Carves the free space a frame saw: for one pixel in every `freeRayStride` block, the cells from
 * the camera to just short of the pixel's surface (depth in [minD, maxD]) become free unless a voxel
 * lies in them. Chunks are created in empty space as needed; each changed chunk takes `revision`.
 * Returns the number of cells that became free. Cost: O(rays × cells crossed).
 */
export function carveFreeSpace(
  grid: VoxelGrid,
  depth: Float32Array,
  pose: Pose,
  k: Intrinsics,
  minD: number,
  maxD: number,
  revision: number,
): number {
  const cellM = freeCellM(grid);
  const inv = 1 / cellM;
  const r = pose.rotation;
  const ox = pose.position[0] * inv;
  const oy = pose.position[1] * inv;
  const oz = pose.position[2] * inv;
  const stride = freeRayStride(k.width);
  let chunk: VoxelChunk | undefined;
  let ccx = 0;
  let ccy = 0;
  let ccz = 0;
  let carved = 0;
  for (let v = stride >> 1; v < k.height; v += stride) {
    const cyr = (v - k.cy) / k.fy;
    for (let u = stride >> 1; u < k.width; u += stride) {
      const d = depth[v * k.width + u]!;
      if (!(d >= minD && d <= maxD)) continue;
      const end = d - carveMargin(d, cellM);
      if (end <= 0) continue;
      startRay(ox, oy, oz, r, inv, (u - k.cx) / k.fx, cyr);
      for (;;) {
        const cx = ray.ix >> CELL_TO_CHUNK;
        const cy = ray.iy >> CELL_TO_CHUNK;
        const cz = ray.iz >> CELL_TO_CHUNK;
        if (chunk === undefined || cx !== ccx || cy !== ccy || cz !== ccz) {
          chunk = grid.ensureChunk(cx, cy, cz);
          ccx = cx;
          ccy = cy;
          ccz = cz;
        }
        if (chunk.markFree(cellIndex(ray.ix, ray.iy, ray.iz))) {
          chunk.revision = revision;
          carved++;
        }
        if (stepRay() >= end) break;
      }
    }
  }
  return carved;
}

/**
 * Per pixel, the camera depth up to which the pixel's ray crosses only known-free cells (0: its
 * first cell is not known free), at most `maxDepthM`. Traced for one pixel per `freeRayStride`
 * block; every pixel takes the least of the (up to four) traced rays around it, so the bound errs
 * towards less free space. Cost: O(rays × free cells crossed + pixels).
 */
export function renderFreeDepth(
  grid: VoxelGrid,
  pose: Pose,
  k: Intrinsics,
  maxDepthM = FUSE_MAX_DEPTH_M,
): Float32Array {
  const { width, height } = k;
  const cellM = freeCellM(grid);
  const inv = 1 / cellM;
  const r = pose.rotation;
  const ox = pose.position[0] * inv;
  const oy = pose.position[1] * inv;
  const oz = pose.position[2] * inv;
  const stride = freeRayStride(width);
  const half = stride >> 1;
  const sw = Math.ceil((width - half) / stride);
  const sh = Math.ceil((height - half) / stride);
  const samples = new Float32Array(sw * sh);
  let chunk: VoxelChunk | undefined;
  let ccx = 0;
  let ccy = 0;
  let ccz = 0;
  for (let j = 0; j < sh; j++) {
    const cyr = (j * stride + half - k.cy) / k.fy;
    for (let i = 0; i < sw; i++) {
      startRay(ox, oy, oz, r, inv, (i * stride + half - k.cx) / k.fx, cyr);
      let t = 0;
      for (;;) {
        const cx = ray.ix >> CELL_TO_CHUNK;
        const cy = ray.iy >> CELL_TO_CHUNK;
        const cz = ray.iz >> CELL_TO_CHUNK;
        if (chunk === undefined || cx !== ccx || cy !== ccy || cz !== ccz) {
          chunk = grid.getChunk(chunkKeyOf(cx, cy, cz));
          ccx = cx;
          ccy = cy;
          ccz = cz;
        }
        if (chunk === undefined || !chunk.isFree(cellIndex(ray.ix, ray.iy, ray.iz))) break;
        t = stepRay();
        if (t >= maxDepthM) {
          t = maxDepthM;
          break;
        }
      }
      samples[j * sw + i] = t;
    }
  }
  // Each pixel: the least of its 2×2 neighbourhood of rays, as the least of two column minima.
  const left = new Int32Array(width);
  for (let u = 0; u < width; u++) left[u] = Math.min(sw - 1, Math.max(0, Math.floor((u - half) / stride)));
  const colMin = new Float32Array(sw);
  const out = new Float32Array(width * height);
  for (let v = 0; v < height; v++) {
    const j0 = Math.min(sh - 1, Math.max(0, Math.floor((v - half) / stride)));
    const j1 = Math.min(sh - 1, j0 + 1);
    for (let i = 0; i < sw; i++) colMin[i] = Math.min(samples[j0 * sw + i]!, samples[j1 * sw + i]!);
    const row = v * width;
    for (let u = 0; u < width; u++) {
      const i0 = left[u]!;
      const a = colMin[i0]!;
      const b = colMin[i0 + 1 < sw ? i0 + 1 : i0]!;
      out[row + u] = Math.min(a, b);
    }
  }
  return out;
}

/**
 * Pixels whose surface (camera depth `depth`, metres; 0 = none) lies inside known free space: the
 * cell holding the surface point is known free, and the memory's own view from this camera
 * (`viewDepth`, 0 = not covered) shows no surface within `freeSpaceTolerance` of it. The view
 * speaks for surfaces whose voxels lie just outside a carved cell (a floor exactly on a cell
 * boundary, seen from afar in stripes that grazing rays carved between); the cell test catches
 * what a view's `freeDepth` misses, since that takes the least of neighbouring rays and so stops
 * at the nearest silhouette (a surface generated just beside a pillar, in space seen empty, would
 * pass). Cost: one cell lookup per pixel.
 */
export function freeSpaceViolations(
  grid: VoxelGrid,
  depth: Float32Array,
  viewDepth: Float32Array,
  pose: Pose,
  k: Intrinsics,
): Uint8Array {
  const mask = new Uint8Array(depth.length);
  const cellM = freeCellM(grid);
  const inv = 1 / cellM;
  const r = pose.rotation;
  const [px, py, pz] = pose.position;
  let chunk: VoxelChunk | undefined;
  let chunkKey = Number.NaN;
  for (let v = 0; v < k.height; v++) {
    const cyr = (v - k.cy) / k.fy;
    for (let u = 0; u < k.width; u++) {
      const p = v * k.width + u;
      const d = depth[p]!;
      if (!(d > 0)) continue;
      const seen = viewDepth[p]!;
      if (seen > 0 && Math.abs(seen - d) <= freeSpaceTolerance(d, cellM)) continue;
      const cxr = (u - k.cx) / k.fx;
      const ix = Math.floor((px + (r[0] * cxr + r[1] * cyr + r[2]) * d) * inv);
      const iy = Math.floor((py + (r[3] * cxr + r[4] * cyr + r[5]) * d) * inv);
      const iz = Math.floor((pz + (r[6] * cxr + r[7] * cyr + r[8]) * d) * inv);
      const key = chunkKeyOf(ix >> CELL_TO_CHUNK, iy >> CELL_TO_CHUNK, iz >> CELL_TO_CHUNK);
      if (key !== chunkKey) {
        chunk = grid.getChunk(key);
        chunkKey = key;
      }
      if (chunk?.isFree(cellIndex(ix, iy, iz))) mask[p] = 1;
    }
  }
  return mask;
}
