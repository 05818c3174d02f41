import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, validatePose } from '../../shared/camera/pose.ts';
import { check } from '../../shared/errors.ts';
import { type RgbdImage, validateRgbd } from '../../shared/image.ts';
import { isCarvedVoxel } from './carvedSpace.ts';
import { carveFreeSpace } from './freeSpace.ts';
import { farSideOfDepthEdges, pruneSeenThrough } from './seenThrough.ts';
import type { VoxelChunk } from './voxelChunk.ts';
import * as layout from './voxelChunk.ts';
import { FUSE_MAX_DEPTH_M, type VoxelGrid } from './voxelGrid.ts';

/** Options of `fuseFrame`. */
export interface FuseOptions {
  /** Pixels where this is non-zero are skipped (moving things). Length width × height. */
  readonly excludeMask?: Uint8Array;
  /** Depths outside [minDepthM, maxDepthM] are skipped as unreliable. */
  readonly minDepthM?: number;
  readonly maxDepthM?: number;
  /**
   * Carve the free space in front of the frame's surfaces (default true). Every pixel with a depth
   * in range carves, `excludeMask` or not: a moving thing still shows the space before it empty.
   */
  readonly freeSpace?: boolean;
  /**
   * Running means (colour, position) weigh history up to this many observations (pixels); default
   * MAX_MEAN_WEIGHT. Higher keeps more of the past: a capture's frames are all equally true.
   */
  readonly maxMeanWeight?: number;
  /** Skip the far side of depth edges whose relative jump exceeds this (see farSideOfDepthEdges); default off. */
  readonly skipDepthEdges?: number;
  /** Remove the voxels this frame sees through first (see pruneSeenThrough); default off. */
  readonly pruneSeenThrough?: boolean;
}

/**
 * How frames of a real capture are fused (imports, the real-data eval and bench). Measured on TUM
 * fr3/cabinet, 44 frames fused, 14 held out (2 cm / 1 cm voxels): fused with the play defaults and
 * rendered with the consensus test 17.02 / 17.76 dB; as captures, rendered with CAPTURE_RENDER, every
 * observation weighted alike (a 64-pixel cap let the loop's
 * last, darker frames repaint the first ones' floor) and the seen-through pruning and the edge skip
 * together 19.06 / 19.31 dB, with Open3D's TSDF at 18.67 / 19.30 dB on the same frames.
 */
export const CAPTURE_FUSE: FuseOptions = {
  maxMeanWeight: 65535,
  skipDepthEdges: 0.03,
  pruneSeenThrough: true,
};

export interface FuseStats {
  readonly pixelsFused: number;
  readonly voxelsCreated: number;
  /** Voxel updates made (runs of pixels in one voxel are merged first). */
  readonly voxelUpdates: number;
  /** Free-space cells that became known empty. */
  readonly freeCellsCarved: number;
  /** Voxels removed as seen through (`pruneSeenThrough`). */
  readonly voxelsPruned: number;
}

/** Running means stop weighting history beyond this many observations, so memory can still adapt. */
const MAX_MEAN_WEIGHT = 64;
/** The running means' cap for the frame being fused (FuseOptions.maxMeanWeight); read by flushEntry. */
let meanWeightCap = MAX_MEAN_WEIGHT;
/** Depth at which an observation's confidence gain has halved, metres. */
const CONFIDENCE_HALF_DEPTH_M = 4;
const CONFIDENCE_GAIN = 0.3;

// Module-local copies: imported bindings can compile to getter calls (tsx, vitest), which the
// per-pixel loop must not pay for.
const CHUNK_BITS = layout.CHUNK_BITS;
const SUB_BITS = layout.SUB_BITS;
const SUB_STEPS = layout.SUB_STEPS;
const STRIDE = layout.STRIDE;
const PX = layout.PX;
const PY = layout.PY;
const PZ = layout.PZ;
const CR = layout.CR;
const CG = layout.CG;
const CB = layout.CB;
const OBS = layout.OBS;
const CONF = layout.CONF;
const AUTHORED = layout.AUTHORED;
const CHUNK_MASK = (1 << CHUNK_BITS) - 1;

/**
 * Back-projects one RGB-D frame into the grid. Every valid pixel (depth in range, not excluded) is
 * a point; runs of neighbouring pixels that fall in the same voxel are merged before the hash
 * lookup. Per voxel it updates the running colour and position means, the observation count and
 * the confidence. Validates everything first, so a bad input throws and leaves the grid unchanged.
 * Cost: O(pixels), one chunk-map lookup per chunk change, one voxel-hash probe per voxel run.
 *
 * pose: camera-to-world, OpenCV axes; depth: camera z in metres.
 */
export function fuseFrame(
  grid: VoxelGrid,
  frame: RgbdImage,
  pose: Pose,
  k: Intrinsics,
  opts: FuseOptions = {},
): FuseStats {
  validateRgbd(frame, 'frame');
  validateIntrinsics(k);
  validatePose(pose);
  check(
    k.width === frame.width && k.height === frame.height,
    'BUFFER_SIZE',
    `intrinsics are for ${k.width}×${k.height} but the frame is ${frame.width}×${frame.height}`,
  );
  const { width, height, rgb, depth } = frame;
  const mask = opts.excludeMask;
  if (mask !== undefined) {
    check(
      mask instanceof Uint8Array && mask.length === width * height,
      'BUFFER_SIZE',
      `excludeMask must be a Uint8Array of ${width * height} values, got ${mask?.length}`,
    );
  }
  const minD = opts.minDepthM ?? 0.05;
  const maxD = opts.maxDepthM ?? FUSE_MAX_DEPTH_M;
  check(
    Number.isFinite(minD) && Number.isFinite(maxD) && minD >= 0 && maxD > minD,
    'INVALID_ARGUMENT',
    `depth range must satisfy 0 ≤ minDepthM < maxDepthM, got [${minD}, ${maxD}]`,
  );
  const maxMeanWeight = opts.maxMeanWeight ?? MAX_MEAN_WEIGHT;
  check(
    Number.isInteger(maxMeanWeight) && maxMeanWeight >= 1 && maxMeanWeight <= 65535,
    'INVALID_ARGUMENT',
    `maxMeanWeight must be an integer in 1..65535, got ${maxMeanWeight}`,
  );
  const edgeJump = opts.skipDepthEdges;
  check(
    edgeJump === undefined || (Number.isFinite(edgeJump) && edgeJump > 0 && edgeJump < 1),
    'INVALID_ARGUMENT',
    `skipDepthEdges must be in (0, 1), got ${edgeJump}`,
  );

  // Every fusable point lies within maxD of the camera; refuse up front rather than fail half-way.
  const reach = Math.max(...pose.position.map(Math.abs)) + maxD;
  check(
    reach < 65000 * grid.chunkSizeM,
    'CAPACITY',
    `camera at ${pose.position.join(', ')} with maxDepthM ${maxD} reaches outside the addressable world (±${65000 * grid.chunkSizeM} m)`,
  );

  const voxelsBefore = grid.voxelCount;
  grid.revision++;
  const revision = grid.revision;
  const invVs = 1 / grid.voxelSizeM;
  const r = pose.rotation;
  // Rotation pre-scaled into voxel units: voxel coords = (R·Xc + t) / voxelSize.
  const r0 = r[0] * invVs,
    r1 = r[1] * invVs,
    r2 = r[2] * invVs;
  const r3 = r[3] * invVs,
    r4 = r[4] * invVs,
    r5 = r[5] * invVs;
  const r6 = r[6] * invVs,
    r7 = r[7] * invVs,
    r8 = r[8] * invVs;
  const tx = pose.position[0] * invVs,
    ty = pose.position[1] * invVs,
    tz = pose.position[2] * invVs;
  const direct = typicalVoxelPixels(depth, minD, maxD, grid.voxelSizeM, k.fx) < DIRECT_BELOW_VOXEL_PX;
  const cache: ChunkCache = { chunk: undefined, x: 0, y: 0, z: 0, revision, direct };
  const rayX = new Float64Array(width);
  for (let u = 0; u < width; u++) rayX[u] = (u - k.cx) / k.fx;
  const rowY = new Float64Array(height);
  for (let v = 0; v < height; v++) rowY[v] = (v - k.cy) / k.fy;
  const m = new Float64Array([r0, r1, r2, r3, r4, r5, r6, r7, r8, tx, ty, tz, minD, maxD]);
  const skip = edgeJump === undefined ? mask : farSideOfDepthEdges(depth, width, height, edgeJump, mask);
  const voxelsPruned = opts.pruneSeenThrough
    ? pruneSeenThrough(grid, depth, pose, k, minD, maxD, revision, skip)
    : 0;
  meanWeightCap = maxMeanWeight;
  const pixelsFused = accumulatePixels(grid, cache, width, height, rgb, depth, skip, rayX, rowY, m);
  const voxelUpdates = flushAll(voxelCache);
  const voxelsCreated = grid.voxelCount - (voxelsBefore - voxelsPruned);
  // After the surfaces, so cells that just received a voxel are not carved.
  const freeCellsCarved =
    opts.freeSpace === false ? 0 : carveFreeSpace(grid, depth, pose, k, minD, maxD, revision);
  return { pixelsFused, voxelsCreated, voxelUpdates, freeCellsCarved, voxelsPruned };
}

interface ChunkCache {
  chunk: VoxelChunk | undefined;
  x: number;
  y: number;
  z: number;
  readonly revision: number;
  /** Update the grid per run instead of merging runs in the voxel cache first. */
  readonly direct: boolean;
}

const VOXEL_CACHE_BITS = 12;
const VOXEL_CACHE_SIZE = 1 << VOXEL_CACHE_BITS;
const VOXEL_CACHE_MASK = VOXEL_CACHE_SIZE - 1;
const INV_HALF_DEPTH = 1 / CONFIDENCE_HALF_DEPTH_M;
/** The finished run handed to addRun: r, g, b, sub-x, sub-y, sub-z sums and its first depth. */
const runSums = new Float64Array(7);

/** Pending voxel updates; per entry 7 sums: r, g, b, sub-x, sub-y, sub-z, confidence gain. */
interface VoxelCache {
  readonly keyX: Int32Array;
  readonly keyY: Int32Array;
  readonly keyZ: Int32Array;
  readonly count: Int32Array;
  readonly sums: Float64Array;
  /** The chunk each entry's voxel lives in, resolved while the runs are still spatially coherent. */
  readonly chunkOf: (VoxelChunk | undefined)[];
  /** Voxel updates made since the last flushAll. */
  updates: number;
}

// Module-level scratch, reused by every call (fuseFrame is synchronous, so never shared).
const voxelCache: VoxelCache = {
  keyX: new Int32Array(VOXEL_CACHE_SIZE),
  keyY: new Int32Array(VOXEL_CACHE_SIZE),
  keyZ: new Int32Array(VOXEL_CACHE_SIZE),
  count: new Int32Array(VOXEL_CACHE_SIZE),
  sums: new Float64Array(VOXEL_CACHE_SIZE * 7),
  chunkOf: new Array<VoxelChunk | undefined>(VOXEL_CACHE_SIZE).fill(undefined),
  updates: 0,
};

/**
 * The per-pixel kernel: two levels of merging before the voxel hash is touched. Runs of pixels in
 * one voxel along a row stay in locals (registers); finished runs go to a direct-mapped cache of
 * recent voxels that joins the runs of neighbouring rows. Returns the number of pixels fused.
 * m = [R/voxel (9, row-major), t/voxel (3), minDepthM, maxDepthM].
 */
function accumulatePixels(
  grid: VoxelGrid,
  cache: ChunkCache,
  width: number,
  height: number,
  rgb: Uint8Array,
  depth: Float32Array,
  mask: Uint8Array | undefined,
  rayX: Float64Array,
  rowY: Float64Array,
  m: Float64Array,
): number {
  const r0 = m[0]!,
    r1 = m[1]!,
    r2 = m[2]!,
    r3 = m[3]!,
    r4 = m[4]!,
    r5 = m[5]!,
    r6 = m[6]!,
    r7 = m[7]!,
    r8 = m[8]!;
  const tx = m[9]!,
    ty = m[10]!,
    tz = m[11]!,
    minD = m[12]!,
    maxD = m[13]!;
  let runX = 0,
    runY = 0,
    runZ = 0,
    runN = 0,
    runD = 0;
  let sumR = 0,
    sumG = 0,
    sumB = 0,
    sumSx = 0,
    sumSy = 0,
    sumSz = 0;
  let pixels = 0;
  for (let v = 0; v < height; v++) {
    const ry = rowY[v]!;
    const bx = r1 * ry + r2,
      by = r4 * ry + r5,
      bz = r7 * ry + r8;
    let i = v * width;
    for (let u = 0; u < width; u++, i++) {
      const d = depth[i]!;
      if (!(d >= minD && d <= maxD)) continue; // also skips NaN
      if (mask !== undefined && mask[i] !== 0) continue;
      const rx = rayX[u]!;
      const gx = (r0 * rx + bx) * d + tx;
      const gy = (r3 * rx + by) * d + ty;
      const gz = (r6 * rx + bz) * d + tz;
      const ix = Math.floor(gx),
        iy = Math.floor(gy),
        iz = Math.floor(gz);
      if (ix !== runX || iy !== runY || iz !== runZ || runN === 0) {
        if (runN > 0) {
          runSums[0] = sumR;
          runSums[1] = sumG;
          runSums[2] = sumB;
          runSums[3] = sumSx;
          runSums[4] = sumSy;
          runSums[5] = sumSz;
          runSums[6] = runD;
          addRun(grid, cache, runX, runY, runZ, runN);
          pixels += runN;
        }
        runX = ix;
        runY = iy;
        runZ = iz;
        runN = 0;
        runD = d;
        sumR = sumG = sumB = sumSx = sumSy = sumSz = 0;
      }
      runN++;
      const i3 = i * 3;
      sumR += rgb[i3]!;
      sumG += rgb[i3 + 1]!;
      sumB += rgb[i3 + 2]!;
      sumSx += gx - ix;
      sumSy += gy - iy;
      sumSz += gz - iz;
    }
  }
  // The last run, flushed like the ones in the loop (kept inline there: a helper taking the sums
  // as arguments would box the doubles on every call).
  if (runN > 0) {
    runSums[0] = sumR;
    runSums[1] = sumG;
    runSums[2] = sumB;
    runSums[3] = sumSx;
    runSums[4] = sumSy;
    runSums[5] = sumSz;
    runSums[6] = runD;
    addRun(grid, cache, runX, runY, runZ, runN);
    pixels += runN;
  }
  return pixels;
}

/**
 * Below this many pixels per voxel edge (at the frame's median depth) runs of neighbouring rows
 * rarely share a voxel, and merging them through the cache costs more than it saves (measured:
 * 0.02 m voxels at 512×288, 9.2 → 8.0 ms direct; 0.05 m, 5.1 ms cached vs 5.8 ms direct).
 */
const DIRECT_BELOW_VOXEL_PX = 2;

/** Projected voxel edge in pixels at the median valid depth of a sparse sample of the frame. */
function typicalVoxelPixels(
  depth: Float32Array,
  minD: number,
  maxD: number,
  voxelSizeM: number,
  fx: number,
): number {
  const sample: number[] = [];
  for (let i = 0; i < depth.length; i += 61) {
    const d = depth[i]!;
    if (d >= minD && d <= maxD) sample.push(d);
  }
  if (sample.length === 0) return 0;
  sample.sort((a, b) => a - b);
  return (voxelSizeM * fx) / sample[sample.length >> 1]!;
}

/**
 * Adds a finished run of n pixels in voxel (vx, vy, vz) to the voxel cache; its sums and first depth
 * are in `runSums`. Only small integers cross this call: V8 would box double arguments.
 */
function addRun(grid: VoxelGrid, cache: ChunkCache, vx: number, vy: number, vz: number, n: number): void {
  const vc = voxelCache;
  const cx = vx >> CHUNK_BITS,
    cy = vy >> CHUNK_BITS,
    cz = vz >> CHUNK_BITS;
  if (cx !== cache.x || cy !== cache.y || cz !== cache.z || cache.chunk === undefined) {
    const chunk = grid.ensureChunk(cx, cy, cz);
    chunk.revision = cache.revision;
    cache.chunk = chunk;
    cache.x = cx;
    cache.y = cy;
    cache.z = cz;
  }
  if (cache.direct) {
    // Voxels about a pixel wide: runs rarely meet again, so update the grid straight away.
    const run = runSums;
    const sums = vc.sums;
    vc.keyX[0] = vx;
    vc.keyY[0] = vy;
    vc.keyZ[0] = vz;
    vc.count[0] = n;
    vc.chunkOf[0] = cache.chunk;
    for (let f = 0; f < 6; f++) sums[f] = run[f]!;
    const q = run[6]! * INV_HALF_DEPTH;
    sums[6] = (n * CONFIDENCE_GAIN) / (1 + q * q);
    flushEntry(vc, 0);
    return;
  }
  const h = (Math.imul(vx, 73856093) ^ Math.imul(vy, 19349663) ^ Math.imul(vz, 83492791)) & VOXEL_CACHE_MASK;
  const sums = vc.sums;
  const h7 = h * 7;
  if (vc.count[h]! > 0) {
    if (vc.keyX[h] !== vx || vc.keyY[h] !== vy || vc.keyZ[h] !== vz) {
      flushEntry(vc, h);
    }
  }
  if (vc.count[h] === 0) {
    vc.keyX[h] = vx;
    vc.keyY[h] = vy;
    vc.keyZ[h] = vz;
    vc.chunkOf[h] = cache.chunk;
    sums[h7] = sums[h7 + 1] = sums[h7 + 2] = sums[h7 + 3] = sums[h7 + 4] = sums[h7 + 5] = sums[h7 + 6] = 0;
  }
  vc.count[h]! += n;
  const run = runSums;
  sums[h7]! += run[0]!;
  sums[h7 + 1]! += run[1]!;
  sums[h7 + 2]! += run[2]!;
  sums[h7 + 3]! += run[3]!;
  sums[h7 + 4]! += run[4]!;
  sums[h7 + 5]! += run[5]!;
  const q = run[6]! * INV_HALF_DEPTH;
  sums[h7 + 6]! += (n * CONFIDENCE_GAIN) / (1 + q * q);
}

/** Flushes every pending cache entry into the grid; returns the number of voxel updates made in total. */
function flushAll(vc: VoxelCache): number {
  for (let h = 0; h < VOXEL_CACHE_SIZE; h++) if (vc.count[h]! > 0) flushEntry(vc, h);
  vc.chunkOf.fill(undefined);
  const updates = vc.updates;
  vc.updates = 0;
  return updates;
}

/** Merges cache entry `e` (n points in one voxel) into the grid and empties it. */
function flushEntry(vc: VoxelCache, e: number): void {
  const vx = vc.keyX[e]!,
    vy = vc.keyY[e]!,
    vz = vc.keyZ[e]!;
  const n = vc.count[e]!;
  vc.count[e] = 0;
  vc.updates++;
  const e7 = e * 7;
  const sums = vc.sums;
  const chunk = vc.chunkOf[e]!;
  // Erased space stays empty, and an edit's voxels stay as the edit wrote them.
  if (chunk.carved !== undefined && isCarvedVoxel(chunk.carved, vx, vy, vz)) return;
  const lx = vx & CHUNK_MASK,
    ly = vy & CHUNK_MASK,
    lz = vz & CHUNK_MASK;
  const slot = chunk.findOrInsert((lx << (2 * CHUNK_BITS)) | (ly << CHUNK_BITS) | lz);
  const d = chunk.data;
  const o = slot * STRIDE;
  if ((d[o + CONF]! & AUTHORED) !== 0) return;
  const obs = d[o + OBS]!;
  const wOld = Math.min(obs, meanWeightCap);
  const inv = 1 / (wOld + n);
  d[o + CR] = ((d[o + CR]! * wOld + sums[e7]! * 256) * inv + 0.5) | 0;
  d[o + CG] = ((d[o + CG]! * wOld + sums[e7 + 1]! * 256) * inv + 0.5) | 0;
  d[o + CB] = ((d[o + CB]! * wOld + sums[e7 + 2]! * 256) * inv + 0.5) | 0;
  const maxSub = SUB_STEPS - 1;
  const sx = (((d[o + PX]! & maxSub) * wOld + sums[e7 + 3]! * SUB_STEPS) * inv) | 0;
  const sy = (((d[o + PY]! & maxSub) * wOld + sums[e7 + 4]! * SUB_STEPS) * inv) | 0;
  const sz = (((d[o + PZ]! & maxSub) * wOld + sums[e7 + 5]! * SUB_STEPS) * inv) | 0;
  d[o + PX] = (lx << SUB_BITS) | Math.min(sx, maxSub);
  d[o + PY] = (ly << SUB_BITS) | Math.min(sy, maxSub);
  d[o + PZ] = (lz << SUB_BITS) | Math.min(sz, maxSub);
  const total = obs + n;
  d[o + OBS] = Math.min(total, 65535);
  // conf' = 1 − (1 − conf)·Π(1 − gain_i), gain falling off with depth; Π(1 − g_i) ≈ 1/(1 + Σg_i) keeps it cheap.
  d[o + CONF] = (255.5 - (255 - d[o + CONF]!) / (1 + sums[e7 + 6]!)) | 0;
}
