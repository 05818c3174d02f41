import type { Intrinsics } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import { fnv1a } from '../../../shared/math/random.ts';
import { renderScene } from '../../scene/rayCaster.ts';
import {
  type ClipRequest,
  type ConditioningFrame,
  describeCpuModel,
  type GeneratedFrame,
  type MemoryViewImage,
  type ModelFrameOptions,
  validateClipRequest,
  type WorldModel,
  type WorldModelInfo,
} from '../worldModel.ts';
import { fitScene, inventWorld } from './inventedWorld.ts';
import { styleFromPrompt } from './style.ts';

export interface ProceduralModelOptions extends ModelFrameOptions {
  /** Add moving entities (default true); off isolates static content in tests. */
  readonly entities?: boolean;
}

/**
 * The embedded default world model (CPU). A stateless stand-in for a neural video model: where
 * the memory views cover a pixel it reproduces them; where they do not it first reprojects the
 * reference keyframes, then invents: a floor (and, indoors, walls and ceiling) fitted to the
 * memory, walls the memory shows continued, props placed by the prompt, textures styled by it. It adds moving
 * entities (flagged in the dynamic mask, depth-tested against everything else) and outputs depth.
 * Nothing survives between `generate` calls: consistency can only come from the request.
 */
export class ProceduralModel implements WorldModel {
  private readonly info: WorldModelInfo;
  private readonly entities: boolean;
  readonly intrinsics: Intrinsics;

  constructor(opts: ProceduralModelOptions = {}) {
    this.entities = opts.entities ?? true;
    ({ info: this.info, intrinsics: this.intrinsics } = describeCpuModel('procedural', opts));
  }

  describe(): WorldModelInfo {
    return this.info;
  }

  async *generate(req: ClipRequest): AsyncGenerator<GeneratedFrame> {
    validateClipRequest(req, this.info);
    const k = req.intrinsics;
    const style = styleFromPrompt(req.prompt);
    const context = [...req.references, ...req.preceding];
    const fit = fitScene(req.poses, k, req.memoryViews, style.indoor, req.seed, context);
    const invented = inventWorld(style, fit, req.poses, req.seed, fnv1a(req.prompt), req.worldSeed ?? 0);
    const world = this.entities ? invented : { ...invented, entities: [] };
    for (let i = 0; i < req.poses.length; i++) {
      if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
      const t0 = performance.now();
      const frame = composeFrame(
        world,
        req.poses[i]!,
        k,
        req.memoryViews[i]!,
        // Reference keyframes first (they are what the memory chose), then the clip's preceding frames.
        [...req.references, ...[...req.preceding].reverse()],
        req.timeS + i / this.info.fps,
      );
      yield { index: i, ...frame, generateMs: performance.now() - t0 };
      // Let other work (sockets, cancellation) in between frames.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async dispose(): Promise<void> {}
}

const NEAR_CULL_M = 0.6;

/** Uncovered-pixel share above which reference frames are reprojected into the gaps. */
const REPROJECT_ABOVE = 0.002;

function composeFrame(
  world: ReturnType<typeof inventWorld>,
  pose: Pose,
  k: Intrinsics,
  view: MemoryViewImage,
  references: readonly ConditioningFrame[],
  timeS: number,
): { rgb: Uint8Array; depth: Float32Array; dynamicMask: Uint8Array } {
  const n = k.width * k.height;
  const rgb = view.rgb.slice();
  const depth = view.depth.slice();
  const known = view.coverage.slice();
  let unknown = 0;
  for (let p = 0; p < n; p++) unknown += 1 - known[p]!;
  if (unknown > n * REPROJECT_ABOVE) {
    for (const ref of references) {
      if (!ref.depth) continue;
      unknown -= reprojectInto(ref, pose, k, rgb, depth, known);
      if (unknown <= n * REPROJECT_ABOVE) break;
    }
  }
  if (unknown > 0) {
    const holes = new Uint8Array(n);
    for (let p = 0; p < n; p++) holes[p] = 1 - known[p]!;
    // Nothing invented nearer than the memory's known free space along the pixel's ray.
    const invented = renderScene(world, pose, k, {
      pixelMask: holes,
      includeEntities: false,
      timeS,
      minDepthM: view.freeDepth,
    });
    for (let p = 0; p < n; p++) {
      if (holes[p] === 0) continue;
      rgb[p * 3] = invented.rgb[p * 3]!;
      rgb[p * 3 + 1] = invented.rgb[p * 3 + 1]!;
      rgb[p * 3 + 2] = invented.rgb[p * 3 + 2]!;
      depth[p] = invented.depth[p]!;
    }
  }
  const dynamicMask = new Uint8Array(n);
  if (world.entities.length > 0) {
    const moving = renderScene(world, pose, k, { includeStatic: false, sky: false, timeS });
    for (let p = 0; p < n; p++) {
      const z = moving.depth[p]!;
      // Entities closer than NEAR_CULL_M are ones the camera is walking through: leave them out.
      if (z > NEAR_CULL_M && (depth[p] === 0 || z < depth[p]!)) {
        rgb[p * 3] = moving.rgb[p * 3]!;
        rgb[p * 3 + 1] = moving.rgb[p * 3 + 1]!;
        rgb[p * 3 + 2] = moving.rgb[p * 3 + 2]!;
        depth[p] = z;
        dynamicMask[p] = 1;
      }
    }
  }
  return { rgb, depth, dynamicMask };
}

/**
 * A reprojected pixel covers a square of its own size scaled by the change of depth, grown by this
 * factor (×2, as a half-width) towards neighbours on its own surface so that magnified surfaces
 * (a floor walked towards) close without gaps; towards an edge it stops at half a pixel.
 * Measured on the turn-back walks: 0.6 left the hall's near floor striped, 1.0 blurred it.
 */
const FOOTPRINT_HALF = 0.8;
/** Neighbouring source depths within this fraction of each other lie on one surface. */
const SAME_SURFACE = 0.08;
/** Edge of the target tiles reprojectInto tests for unknown pixels (8 px). */
const UNKNOWN_TILE_BITS = 3;
const UNKNOWN_TILE = 1 << UNKNOWN_TILE_BITS;

/**
 * Whether the target rectangle [u0, u1] × [v0, v1] (pixels, clipped to the image) touches a tile
 * of `unknownTile` (UNKNOWN_TILE px square, `tilesX` per row) that holds an unknown pixel.
 */
function reachesUnknown(
  unknownTile: Uint8Array,
  tilesX: number,
  width: number,
  height: number,
  u0: number,
  u1: number,
  v0: number,
  v1: number,
): boolean {
  const ra = Math.max(0, Math.floor(u0));
  const rb = Math.min(width - 1, Math.ceil(u1));
  const rc = Math.max(0, Math.floor(v0));
  const rd = Math.min(height - 1, Math.ceil(v1));
  if (ra > rb || rc > rd) return false; // off the image
  for (let ty = rc >> UNKNOWN_TILE_BITS; ty <= rd >> UNKNOWN_TILE_BITS; ty++)
    for (let tx = ra >> UNKNOWN_TILE_BITS; tx <= rb >> UNKNOWN_TILE_BITS; tx++)
      if (unknownTile[ty * tilesX + tx] === 1) return true;
  return false;
}

/**
 * Forward-warps a reference frame into the pixels of the target view that are still unknown,
 * nearest first. Every source pixel is projected on its own and covers the target pixels whose
 * centres fall inside its footprint; the footprint reaches only half a pixel towards a depth edge,
 * so a foreground edge does not spread over the background it uncovers (fused, such spread made
 * the courtyard's trees and walls grow a pixel per walked metre). Returns how many unknown pixels
 * it filled. O(source pixels + covered target pixels).
 */
export function reprojectInto(
  ref: ConditioningFrame,
  pose: Pose,
  k: Intrinsics,
  rgb: Uint8Array,
  depth: Float32Array,
  known: Uint8Array,
): number {
  const rk = ref.intrinsics;
  const rd = ref.depth!;
  const a = ref.pose.rotation;
  const b = pose.rotation;
  // Reference camera → world → target camera: Xt = Bᵀ(A·Xr + ta − tb).
  const m = new Float64Array(9);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) m[i * 3 + j] = b[i]! * a[j]! + b[3 + i]! * a[3 + j]! + b[6 + i]! * a[6 + j]!;
  const dp = ref.pose.position;
  const tp = pose.position;
  const t = [0, 1, 2].map(
    (i) => b[i]! * (dp[0] - tp[0]) + b[3 + i]! * (dp[1] - tp[1]) + b[6 + i]! * (dp[2] - tp[2]),
  );
  const m0 = m[0]!,
    m1 = m[1]!,
    m2 = m[2]!,
    m3 = m[3]!,
    m4 = m[4]!,
    m5 = m[5]!,
    m6 = m[6]!,
    m7 = m[7]!,
    m8 = m[8]!;
  const t0 = t[0]!,
    t1 = t[1]!,
    t2 = t[2]!;
  const { width, height, fx, fy, cx, cy } = k;
  const rw = rk.width;
  const rh = rk.height;
  const scaleX = fx / rk.fx;
  const scaleY = fy / rk.fy;
  const zbuf = new Float32Array(width * height);
  // Tiles of the target holding an unknown pixel: most source pixels land where the memory view
  // already covers every pixel their footprint could reach, and are skipped after projecting.
  const tilesX = (width + UNKNOWN_TILE - 1) >> UNKNOWN_TILE_BITS;
  const tilesY = (height + UNKNOWN_TILE - 1) >> UNKNOWN_TILE_BITS;
  const unknownTile = new Uint8Array(tilesX * tilesY);
  for (let p = 0; p < known.length; p++)
    if (known[p] === 0)
      unknownTile[((p / width) >> UNKNOWN_TILE_BITS) * tilesX + ((p % width) >> UNKNOWN_TILE_BITS)] = 1;
  // Source tiles whose every point lands (footprint included) in target tiles without an unknown
  // pixel are skipped whole. A tile's points lie in the frustum piece spanned by its pixel range and
  // depth range; that piece is the hull of its 8 corners, so (all in front of the camera) its image
  // lies within the corners' images. Pixels are still visited in row order: same writes, same ties.
  const stW = (rw + UNKNOWN_TILE - 1) >> UNKNOWN_TILE_BITS;
  const stH = (rh + UNKNOWN_TILE - 1) >> UNKNOWN_TILE_BITS;
  const skipTile = new Uint8Array(stW * stH);
  for (let tv = 0; tv < stH; tv++) {
    const v0 = tv << UNKNOWN_TILE_BITS;
    const v1 = Math.min(rh, v0 + UNKNOWN_TILE) - 1;
    for (let tu = 0; tu < stW; tu++) {
      const u0 = tu << UNKNOWN_TILE_BITS;
      const u1 = Math.min(rw, u0 + UNKNOWN_TILE) - 1;
      let dMin = Number.POSITIVE_INFINITY;
      let dMax = 0;
      for (let v = v0; v <= v1; v++)
        for (let u = u0; u <= u1; u++) {
          const d = rd[v * rw + u]!;
          if (d > 0) {
            if (d < dMin) dMin = d;
            if (d > dMax) dMax = d;
          }
        }
      if (dMax === 0) {
        skipTile[tv * stW + tu] = 1; // no depth: nothing to reproject
        continue;
      }
      let uMin = Number.POSITIVE_INFINITY;
      let uMax = Number.NEGATIVE_INFINITY;
      let vMin = Number.POSITIVE_INFINITY;
      let vMax = Number.NEGATIVE_INFINITY;
      let zMin = Number.POSITIVE_INFINITY;
      for (let c = 0; c < 8; c++) {
        const d = c & 4 ? dMax : dMin;
        const x = (((c & 1 ? u1 : u0) - rk.cx) / rk.fx) * d;
        const y = (((c & 2 ? v1 : v0) - rk.cy) / rk.fy) * d;
        const zt = m6 * x + m7 * y + m8 * d + t2;
        if (zt < zMin) zMin = zt;
        const ut = (fx * (m0 * x + m1 * y + m2 * d + t0)) / zt + cx;
        const vt = (fy * (m3 * x + m4 * y + m5 * d + t1)) / zt + cy;
        if (ut < uMin) uMin = ut;
        if (ut > uMax) uMax = ut;
        if (vt < vMin) vMin = vt;
        if (vt > vMax) vMax = vt;
      }
      if (!(zMin > 0.05)) continue; // reaches behind the camera: test pixel by pixel
      const hx = FOOTPRINT_HALF * (dMax / zMin) * scaleX + 0.5;
      const hy = FOOTPRINT_HALF * (dMax / zMin) * scaleY + 0.5;
      if (!reachesUnknown(unknownTile, tilesX, width, height, uMin - hx, uMax + hx, vMin - hy, vMax + hy))
        skipTile[tv * stW + tu] = 1;
    }
  }
  let filled = 0;
  for (let v = 0; v < rh; v++) {
    const ry = (v - rk.cy) / rk.fy;
    const tileRow = (v >> UNKNOWN_TILE_BITS) * stW;
    for (let u = 0; u < rw; u++) {
      if (skipTile[tileRow + (u >> UNKNOWN_TILE_BITS)] === 1) {
        u |= UNKNOWN_TILE - 1; // the rest of this tile's row
        continue;
      }
      const q = v * rw + u;
      const d = rd[q]!;
      if (!(d > 0)) continue;
      const x = ((u - rk.cx) / rk.fx) * d;
      const y = ry * d;
      const zt = m6 * x + m7 * y + m8 * d + t2;
      if (zt <= 0.05) continue;
      const iz = 1 / zt;
      const ut = fx * (m0 * x + m1 * y + m2 * d + t0) * iz + cx;
      const vt = fy * (m3 * x + m4 * y + m5 * d + t1) * iz + cy;
      const sx = d * iz * scaleX;
      const sy = d * iz * scaleY;
      // Every pixel the footprint below can reach lies within FOOTPRINT_HALF·s + ½ of the centre
      // (half-widths ≤ FOOTPRINT_HALF, or the pixel nearest the centre).
      const hx = FOOTPRINT_HALF * sx + 0.5;
      const hy = FOOTPRINT_HALF * sy + 0.5;
      if (!reachesUnknown(unknownTile, tilesX, width, height, ut - hx, ut + hx, vt - hy, vt + hy)) continue;
      // Footprint half-widths towards each side: FOOTPRINT_HALF over the same surface, else ½.
      const tol = SAME_SURFACE * d;
      const hl = (u > 0 && Math.abs(rd[q - 1]! - d) <= tol ? FOOTPRINT_HALF : 0.5) * sx;
      const hr = (u + 1 < rw && Math.abs(rd[q + 1]! - d) <= tol ? FOOTPRINT_HALF : 0.5) * sx;
      const hu = (v > 0 && Math.abs(rd[q - rw]! - d) <= tol ? FOOTPRINT_HALF : 0.5) * sy;
      const hd = (v + 1 < rh && Math.abs(rd[q + rw]! - d) <= tol ? FOOTPRINT_HALF : 0.5) * sy;
      let x0 = Math.ceil(ut - hl);
      let x1 = Math.floor(ut + hr);
      let y0 = Math.ceil(vt - hu);
      let y1 = Math.floor(vt + hd);
      // A footprint narrower than a pixel still lands on the pixel nearest its centre.
      if (x0 > x1) x0 = x1 = Math.round(ut);
      if (y0 > y1) y0 = y1 = Math.round(vt);
      if (x0 < 0) x0 = 0;
      if (y0 < 0) y0 = 0;
      if (x1 >= width) x1 = width - 1;
      if (y1 >= height) y1 = height - 1;
      for (let yy = y0; yy <= y1; yy++) {
        for (let xx = x0; xx <= x1; xx++) {
          const p = yy * width + xx;
          if (known[p] === 1 || (zbuf[p]! > 0 && zbuf[p]! <= zt)) continue;
          if (zbuf[p] === 0) filled++;
          zbuf[p] = zt;
          depth[p] = zt;
          rgb[p * 3] = ref.rgb[q * 3]!;
          rgb[p * 3 + 1] = ref.rgb[q * 3 + 1]!;
          rgb[p * 3 + 2] = ref.rgb[q * 3 + 2]!;
        }
      }
    }
  }
  for (let p = 0; p < zbuf.length; p++) if (zbuf[p]! > 0) known[p] = 1;
  return filled;
}
