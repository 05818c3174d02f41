import type { Pose } from '../../shared/camera/pose.ts';
import { crc32 } from '../../shared/codec/crc32.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import type { DirectedFrame, Director } from './director.ts';

/**
 * The one clip loop: the game server (clips planned from a player's input), `npm run replay`
 * (clips read from a recorded log) and `npm run render` / the eval (clips cut from a trajectory)
 * all run their clips through `playClip`, so a recorded session replays bit for bit.
 */

/** Everything that decides a clip's frames besides the memory and the director's history. */
export interface ClipPlan {
  /** Target cameras, camera-to-world (OpenCV axes), 1/fps apart. */
  readonly poses: readonly Pose[];
  readonly seed: number;
  /** World time of the first frame, seconds. */
  readonly timeS: number;
  /** The prompt for this clip (absent: the director's current one). */
  readonly prompt?: string;
}

/**
 * Starts a world from its scene's ground truth at `pose`, world time `timeS` (the paper's initial
 * image): fused into the memory, kept as a keyframe and the first clip's preceding frame.
 */
export function seedFromScene(director: Director, scene: Scene, pose: Pose, timeS = 0): void {
  const gt = renderScene(scene, pose, director.intrinsics, { timeS });
  director.seedFrame(gt, pose, gt.dynamicMask);
}

/** Runs one planned clip, yielding each frame after the memory has taken it in. */
export async function* playClip(
  director: Director,
  plan: ClipPlan,
  signal?: AbortSignal,
): AsyncGenerator<DirectedFrame> {
  if (plan.prompt !== undefined) director.prompt = plan.prompt;
  yield* director.runClip(plan.poses, { seed: plan.seed, timeS: plan.timeS, signal });
}

/**
 * A trajectory's clips after its first pose (the seed frame): `framesPerClip` poses each, seeds
 * `seed`, `seed + 1`, …, world time = pose index / fps.
 */
export function trajectoryClips(
  poses: readonly Pose[],
  framesPerClip: number,
  fps: number,
  seed: number,
): ClipPlan[] {
  const plans: ClipPlan[] = [];
  for (let start = 1, clip = 0; start < poses.length; start += framesPerClip, clip++)
    plans.push({
      poses: poses.slice(start, start + framesPerClip),
      seed: (seed + clip) >>> 0,
      timeS: start / fps,
    });
  return plans;
}

/** The checksum a recording keeps per frame and a replay compares: CRC-32 of the generated RGB. */
export const frameChecksum = (frame: { readonly rgb: Uint8Array }): number => crc32(frame.rgb) >>> 0;
