import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { RgbdImage } from '../../shared/image.ts';
import { CAPTURE_FUSE } from '../memory/fuse.ts';
import { CAPTURE_RENDER } from '../memory/renderView.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { ssim } from '../metrics/imageMetrics.ts';

/**
 * The memory on captured RGB-D data (`npm run eval -- --dataset FORMAT:DIR`): fidelity (fuse all
 * frames but every 4th, render the held-out poses) and revisit (fuse the first pass, render the
 * poses that come back), fused and rendered as captures are (CAPTURE_FUSE, CAPTURE_RENDER). Scores compare each render with the held-out frame over the pixels the frame measured:
 * coverage of those, PSNR and SSIM where the render covers them, median depth error.
 */
export interface CapturedFrame {
  readonly image: RgbdImage;
  readonly pose: Pose;
}

export interface CaptureScore {
  readonly experiment: 'fidelity' | 'revisit';
  readonly voxelSize: number;
  readonly fused: number;
  readonly rendered: number;
  /** Share of the held-out frames' measured pixels the render covers. */
  readonly coverage: number;
  /** Over the measured pixels the render covers, all held-out frames together. */
  readonly psnr: number;
  /** Standard SSIM (imageMetrics.ts) per frame over those pixels, averaged. */
  readonly ssim: number;
  /** Median |rendered − measured depth|, metres. */
  readonly depthErrMedian: number;
  readonly voxels: number;
}

/** Scores renders of `memory` at the poses of `held` against those frames. */
function score(
  memory: SpatialMemory,
  held: readonly CapturedFrame[],
  k: Intrinsics,
): Omit<CaptureScore, 'experiment' | 'voxelSize' | 'fused'> {
  let se = 0;
  let n = 0;
  let measured = 0;
  let covered = 0;
  let ssimSum = 0;
  let ssimFrames = 0;
  const errs: number[] = [];
  for (const f of held) {
    const view = memory.render(f.pose, k, CAPTURE_RENDER);
    const gt = f.image;
    const mask = new Uint8Array(gt.depth.length);
    for (let p = 0; p < gt.depth.length; p++) {
      if (!(gt.depth[p]! > 0)) continue;
      measured++;
      if (view.coverage[p] !== 1) continue;
      covered++;
      mask[p] = 1;
      for (let c = 0; c < 3; c++) se += (view.rgb[p * 3 + c]! - gt.rgb[p * 3 + c]!) ** 2;
      n += 3;
      errs.push(Math.abs(view.depth[p]! - gt.depth[p]!));
    }
    const s = ssim(view.rgb, gt.rgb, k.width, k.height, mask);
    if (Number.isFinite(s)) {
      ssimSum += s;
      ssimFrames++;
    }
  }
  errs.sort((a, b) => a - b);
  return {
    rendered: held.length,
    coverage: covered / Math.max(1, measured),
    psnr: 10 * Math.log10((255 * 255) / (se / Math.max(1, n))),
    ssim: ssimFrames > 0 ? ssimSum / ssimFrames : Number.NaN,
    depthErrMedian: errs[errs.length >> 1] ?? Number.NaN,
    voxels: memory.voxelCount,
  };
}

/** Every frame but every 4th fused; the 4th ones rendered and scored. */
export function captureFidelity(
  frames: readonly CapturedFrame[],
  k: Intrinsics,
  voxelSize: number,
): CaptureScore {
  const memory = SpatialMemory.create(voxelSize);
  const fused = frames.filter((_f, i) => i % 4 !== 3);
  for (const f of fused) memory.fuse(f.image, f.pose, k, CAPTURE_FUSE);
  return {
    experiment: 'fidelity',
    voxelSize,
    fused: fused.length,
    ...score(
      memory,
      frames.filter((_f, i) => i % 4 === 3),
      k,
    ),
  };
}

/**
 * The first `firstPass` share of the frames fused, the rest (coming back over what the first pass
 * saw, as a loop around an object does) rendered and scored.
 */
export function captureRevisit(
  frames: readonly CapturedFrame[],
  k: Intrinsics,
  voxelSize: number,
  firstPass = 0.85,
): CaptureScore {
  const split = Math.max(1, Math.min(frames.length - 1, Math.round(frames.length * firstPass)));
  const memory = SpatialMemory.create(voxelSize);
  for (const f of frames.slice(0, split)) memory.fuse(f.image, f.pose, k, CAPTURE_FUSE);
  return { experiment: 'revisit', voxelSize, fused: split, ...score(memory, frames.slice(split), k) };
}
