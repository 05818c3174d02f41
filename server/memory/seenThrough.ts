import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { ChunkFrustum } from './frustum.ts';
import * as layout from './voxelChunk.ts';
import type { VoxelGrid } from './voxelGrid.ts';

/**
 * Seen-through pruning, for memories fused from real captures. A capture's poses disagree by
 * centimetres over a loop, so each frame leaves its surfaces a little off the others', and a plain
 * point memory keeps them all: from another camera the stray copy of a cabinet's edge hangs in
 * front of the floor. A TSDF removes such copies by averaging signed distances; here, a frame that
 * measures a surface well behind a voxel (the voxel lies in space the frame saw through) removes the
 * voxel. Measured on TUM fr3/cabinet (every 4th frame held out): see docs/formats.md.
 */

/**
 * A voxel is seen through when it lies in front of the measured surface at its pixel by more than
 * this many voxels or SEEN_THROUGH_MARGIN of the depth, whichever is larger: the capture's depth
 * noise and pose disagreement between neighbouring frames stay inside. Measured (2 cm / 1 cm voxels,
 * held-out PSNR, rendered with a full-resolution Gaussian blend of the layers while tuning): 3 %
 * 19.02 / 19.27 dB, 4.5 % — / 19.35, 6 % 19.13 / 19.40, 8 % — / 19.39.
 */
const SEEN_THROUGH_MARGIN = 0.06;
const SEEN_THROUGH_MARGIN_VOXELS = 3;
/**
 * The measured depth a voxel is compared with is the nearest within 2–3 pixels (guardDepth), and
 * none where any of them is unmeasured: at a depth edge a voxel of the near side lands on the far
 * side's pixels by a pixel or two of pose error. Measured as a radius (1 cm voxels): 1 px 19.10 dB,
 * 2 px 19.26 dB, 3 and 4 px 19.26 dB.
 */

const STRIDE = layout.STRIDE;
const CONF = layout.CONF;
const AUTHORED = layout.AUTHORED;

/**
 * Removes the voxels `depth` (camera z, metres; 0 = none; taken from `pose`) sees through, except
 * authored ones; marks their chunks changed at `revision`. Pixels `skip` marks (non-zero) count as
 * unmeasured. Returns the number removed.
 * Cost: O(pixels) for the guard, O(voxels in the frustum) for the test.
 */
export function pruneSeenThrough(
  grid: VoxelGrid,
  depth: Float32Array,
  pose: Pose,
  k: Intrinsics,
  minDepthM: number,
  maxDepthM: number,
  revision: number,
  skip?: Uint8Array,
): number {
  const { width, height, fx, fy, cx, cy } = k;
  const guard = guardDepth(depth, width, height, minDepthM, maxDepthM, skip);
  const gd = guard.depth;
  const gw = guard.width;
  const frustum = new ChunkFrustum(pose, k, grid.chunkSizeM, minDepthM, maxDepthM);
  const t = new Float64Array(12);
  const marginFloor = SEEN_THROUGH_MARGIN_VOXELS * grid.voxelSizeM;
  let removed = 0;
  for (const chunk of grid.chunks()) {
    if (chunk.count === 0 || Number.isNaN(frustum.centreDepth(chunk))) continue;
    frustum.recordTransform(chunk, grid.positionStepM, t);
    const bx = t[0]!,
      by = t[1]!,
      bz = t[2]!;
    const m00 = t[3]!,
      m01 = t[4]!,
      m02 = t[5]!;
    const m10 = t[6]!,
      m11 = t[7]!,
      m12 = t[8]!;
    const m20 = t[9]!,
      m21 = t[10]!,
      m22 = t[11]!;
    const d = chunk.data;
    let drop: Set<number> | undefined;
    for (let s = 0, o = 0; s < chunk.count; s++, o += STRIDE) {
      const qx = d[o]!,
        qy = d[o + 1]!,
        qz = d[o + 2]!;
      const z = bz + m20 * qx + m21 * qy + m22 * qz;
      if (z <= minDepthM) continue;
      const iz = 1 / z;
      // Pixel centres at integers: +0.5 then truncation rounds (both checked ≥ 0 first).
      const u = fx * (bx + m00 * qx + m01 * qy + m02 * qz) * iz + cx + 0.5;
      const v = fy * (by + m10 * qx + m11 * qy + m12 * qz) * iz + cy + 0.5;
      if (!(u >= 0 && v >= 0 && u < width && v < height)) continue;
      const measured = gd[(v >> 1) * gw + (u >> 1)]!;
      if (measured === 0) continue;
      const margin = measured * SEEN_THROUGH_MARGIN;
      if (z >= measured - Math.max(margin, marginFloor)) continue;
      if ((d[o + CONF]! & AUTHORED) !== 0) continue;
      drop ??= new Set();
      drop.add(s);
    }
    if (drop !== undefined) {
      const set = drop;
      removed += chunk.removeWhere((s) => set.has(s));
      chunk.revision = revision;
    }
  }
  return removed;
}

/**
 * The measured depth a voxel is compared with, at half resolution: per 2×2 block, the nearest depth
 * within the 6×6 pixels around it (2 to 3 pixels beyond the block: EDGE_GUARD_PX), or 0 where any
 * of them is out of range, unmeasured or skipped. With those set to 0 first, plain minimum filters
 * give exactly that. O(pixels); a full-resolution 5×5 filter cost 12 ms a 640×480 frame, this 3.
 */
function guardDepth(
  depth: Float32Array,
  width: number,
  height: number,
  minD: number,
  maxD: number,
  skip: Uint8Array | undefined,
): { readonly depth: Float32Array; readonly width: number } {
  const bw = (width + 1) >> 1;
  const bh = (height + 1) >> 1;
  const blocks = new Float32Array(bw * bh).fill(Number.POSITIVE_INFINITY);
  for (let y = 0; y < height; y++) {
    const row = (y >> 1) * bw;
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const v = depth[p]!;
      const m = v >= minD && v <= maxD && (skip === undefined || skip[p] === 0) ? v : 0;
      const b = row + (x >> 1);
      if (m < blocks[b]!) blocks[b] = m;
    }
  }
  // A 3×3 minimum over the blocks, rows then columns.
  const rows = new Float32Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    const base = y * bw;
    for (let x = 0; x < bw; x++) {
      let m = blocks[base + x]!;
      if (x > 0 && blocks[base + x - 1]! < m) m = blocks[base + x - 1]!;
      if (x + 1 < bw && blocks[base + x + 1]! < m) m = blocks[base + x + 1]!;
      rows[base + x] = m;
    }
  }
  const out = new Float32Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    const base = y * bw;
    for (let x = 0; x < bw; x++) {
      let m = rows[base + x]!;
      if (y > 0 && rows[base - bw + x]! < m) m = rows[base - bw + x]!;
      if (y + 1 < bh && rows[base + bw + x]! < m) m = rows[base + bw + x]!;
      out[base + x] = m;
    }
  }
  return { depth: out, width: bw };
}

/**
 * Pixels on the far side of a depth edge: a 4-neighbour is nearer by more than `relativeJump` of
 * the depth. Their colour mixes both sides (the colour camera's edge is not the depth camera's), and
 * fused they leave halos around objects. Returns a mask (1 = skip) merged with `exclude`.
 */
export function farSideOfDepthEdges(
  depth: Float32Array,
  width: number,
  height: number,
  relativeJump: number,
  exclude: Uint8Array | undefined,
): Uint8Array {
  const mask = exclude ? new Uint8Array(exclude) : new Uint8Array(depth.length);
  const keep = 1 - relativeJump;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const limit = depth[p]! * keep;
      if (!(limit > 0)) continue;
      const l = x > 0 ? depth[p - 1]! : 0;
      const r = x < width - 1 ? depth[p + 1]! : 0;
      const u = y > 0 ? depth[p - width]! : 0;
      const dn = y < height - 1 ? depth[p + width]! : 0;
      if ((l > 0 && l < limit) || (r > 0 && r < limit) || (u > 0 && u < limit) || (dn > 0 && dn < limit))
        mask[p] = 1;
    }
  }
  return mask;
}
