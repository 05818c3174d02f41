import type { Intrinsics } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { reprojectInto } from '../procedural/proceduralModel.ts';
import type { ConditioningFrame, MemoryViewImage } from '../worldModel.ts';

/**
 * The ONNX denoiser's conditioning for one target frame (docs/onnx-model.md), channels-first,
 * values in [0, 1]: the memory view (RGB, coverage, depth), the reference keyframes warped into
 * the target camera (RGB, mask, depth) and the preceding frames warped likewise. Training data
 * (tools/train/makeDataset.ts) and inference both build it here, so they cannot drift apart.
 */
export const COND_CHANNELS = 15;
/** Depth is normalised as min(d, MAX_DEPTH_M) / MAX_DEPTH_M. */
export const MAX_DEPTH_M = 20;

/** Frames warped into a target camera: what they show there, and where (known = 1). */
export interface WarpedFrames {
  readonly rgb: Uint8Array;
  readonly depth: Float32Array;
  readonly known: Uint8Array;
}

/** `frames` (those with depth) forward-warped into the camera at `pose`, nearest first (reprojectInto). */
export function warpFrames(frames: readonly ConditioningFrame[], pose: Pose, k: Intrinsics): WarpedFrames {
  const n = k.width * k.height;
  const warped = { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), known: new Uint8Array(n) };
  for (const f of frames) if (f.depth) reprojectInto(f, pose, k, warped.rgb, warped.depth, warped.known);
  return warped;
}

/**
 * `warpedReferences`: the references already warped (warpFrames), for a caller that needs them too.
 */
export function buildConditioning(
  pose: Pose,
  k: Intrinsics,
  view: MemoryViewImage,
  references: readonly ConditioningFrame[],
  preceding: readonly ConditioningFrame[],
  out: Float32Array = new Float32Array(COND_CHANNELS * k.width * k.height),
  warpedReferences: WarpedFrames = warpFrames(references, pose, k),
): Float32Array {
  const n = k.width * k.height;
  writeImage(out, 0, n, view.rgb, view.coverage, view.depth);
  for (const [group, w] of [
    [1, warpedReferences],
    [2, warpFrames(preceding, pose, k)],
  ] as const)
    writeImage(out, group * 5, n, w.rgb, w.known, w.depth);
  return out;
}

function writeImage(
  out: Float32Array,
  channel: number,
  n: number,
  rgb: Uint8Array,
  mask: Uint8Array,
  depth: Float32Array,
): void {
  const r = channel * n;
  for (let p = 0; p < n; p++) {
    const m = mask[p]! ? 1 : 0;
    out[r + p] = (rgb[p * 3]! / 255) * m;
    out[r + n + p] = (rgb[p * 3 + 1]! / 255) * m;
    out[r + 2 * n + p] = (rgb[p * 3 + 2]! / 255) * m;
    out[r + 3 * n + p] = m;
    out[r + 4 * n + p] = m ? Math.min(depth[p]!, MAX_DEPTH_M) / MAX_DEPTH_M : 0;
  }
}
