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
 * memory, props seeded by the request's seed, textures styled by the prompt. It adds moving
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
    const invented = inventWorld(style, fit, req.poses, req.seed, fnv1a(req.prompt));
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
 * Forward-warps a reference frame (every second pixel, 2×2 splats) into the pixels of the target
 * view that are still unknown, nearest first. Returns how many unknown pixels it filled.
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
  const dt = [
    ref.pose.position[0] - pose.position[0],
    ref.pose.position[1] - pose.position[1],
    ref.pose.position[2] - pose.position[2],
  ];
  const t = [0, 1, 2].map((i) => b[i]! * dt[0]! + b[3 + i]! * dt[1]! + b[6 + i]! * dt[2]!);
  const zbuf = new Float32Array(k.width * k.height);
  let filled = 0;
  for (let v = 0; v < rk.height; v += 2) {
    for (let u = 0; u < rk.width; u += 2) {
      const q = v * rk.width + u;
      const d = rd[q]!;
      if (!(d > 0)) continue;
      const x = ((u - rk.cx) / rk.fx) * d;
      const y = ((v - rk.cy) / rk.fy) * d;
      const zt = m[6]! * x + m[7]! * y + m[8]! * d + t[2]!;
      if (zt <= 0.05) continue;
      const ut = Math.round((k.fx * (m[0]! * x + m[1]! * y + m[2]! * d + t[0]!)) / zt + k.cx);
      const vt = Math.round((k.fy * (m[3]! * x + m[4]! * y + m[5]! * d + t[1]!)) / zt + k.cy);
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const uu = ut + dx;
          const vv = vt + dy;
          if (uu < 0 || vv < 0 || uu >= k.width || vv >= k.height) continue;
          const p = vv * k.width + uu;
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
