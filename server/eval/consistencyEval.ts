import { type Intrinsics, intrinsicsFromFov } from '../../shared/camera/intrinsics.ts';
import { type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M } from '../memory/voxelGrid.ts';
import { psnr, ssim } from '../metrics/imageMetrics.ts';
import { createLocalModel } from '../models/localModels.ts';
import type { WorldModel } from '../models/worldModel.ts';
import { promptForScene } from '../scene/prompts.ts';
import { countGhostPoints, renderScene } from '../scene/rayCaster.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { playClip, seedFromScene, trajectoryClips } from '../world/clipLoop.ts';
import {
  type DirectedFrame,
  Director,
  type DirectorOptions,
  type DynamicMasking,
} from '../world/director.ts';
import { closedLoopTrajectory, sampleTrajectory, type Trajectory } from '../world/trajectory.ts';

/**
 * The paper's experiments as plain functions over a scene and a trajectory; the CLI in
 * server/tools/eval.ts runs them on the bundled scenes, prints the table and draws the plot.
 */

export interface ClosedLoopRow {
  readonly scene: string;
  readonly model: string;
  readonly memory: boolean;
  readonly k: number;
  /** Last generated frame (back at the start pose) against the first frame, static pixels. */
  readonly psnr: number;
  readonly ssim: number;
  readonly frames: number;
}
export interface FidelityRow {
  readonly scene: string;
  readonly voxelSize: number;
  /** Over the held-out pixels the memory covers. */
  readonly psnr: number;
  /** Share of the held-out static pixels within 20 m that the memory covers. */
  readonly coverage: number;
  readonly voxels: number;
}
export interface LeakageRow {
  readonly scene: string;
  readonly masking: DynamicMasking;
  readonly dynamicPixels: number;
  readonly ghostVoxels: number;
}
export interface TurnBackRow {
  readonly scene: string;
  readonly model: string;
  /** Metres walked in before turning back. */
  readonly walkM: number;
  /** Last frame (back at the start, facing the start) against the first, static pixels. */
  readonly psnrMemoryOn: number;
  readonly psnrMemoryOff: number;
  /** Memory points inside a moving entity at any frame's time (memory on, the model's mask). */
  readonly ghostVoxels: number;
  /** Generated pixels the memory refused because they put a surface inside known free space. */
  readonly freeSpaceRejected: number;
  readonly frames: number;
}
export interface DriftRow {
  readonly scene: string;
  readonly frames: number;
  /** Frames that had static pixels within 20 m to compare. */
  readonly comparedFrames: number;
  readonly psnrMean: number;
  readonly psnrMin: number;
  /** PSNR of every frame against the ground truth (for the plot; left out of the JSON rows). */
  readonly perFrame: readonly number[];
}

/** The default closed loop of a scene: from its spawn, a 0.5 m circle while turning a full 360°. */
export function defaultLoop(scene: Scene, durationS: number): Trajectory {
  return closedLoopTrajectory(
    { position: scene.spawn.position as Vec3, yawDeg: scene.spawn.yawDeg, pitchDeg: scene.spawn.pitchDeg },
    durationS,
  );
}

/**
 * Walk in and turn back (issue 16): from the spawn, walk straight ahead (at most 5 m, half the free
 * distance in front), turn around, walk back, and turn on to face the way the spawn faced. The way
 * back faces space nobody has seen; the last frame should be the first again.
 */
export function turnBackPath(scene: Scene): Trajectory {
  const s = scene.spawn;
  const p = s.position as Vec3;
  const yaw = (s.yawDeg * Math.PI) / 180;
  // Free distance straight ahead at eye height: the centre pixel of a tiny ground-truth view.
  const probe = intrinsicsFromFov(9, 9, 10);
  const ahead = renderScene(scene, poseFromYawPitch(p, yaw, 0), probe, { includeEntities: false }).depth[40]!;
  const walkM = Math.min(5, 0.5 * (ahead > 0 ? ahead : 10));
  const far: Vec3 = [p[0] + Math.sin(yaw) * walkM, p[1], p[2] - Math.cos(yaw) * walkM];
  const walkS = walkM / 1.2;
  const turnS = 2;
  const at = (t: number, position: Vec3, yawDeg: number) => ({ t, position, yawDeg, pitchDeg: s.pitchDeg });
  return {
    version: 1,
    name: `${scene.name} turn back`,
    waypoints: [
      at(0, p, s.yawDeg),
      at(walkS, far, s.yawDeg),
      at(walkS + turnS, far, s.yawDeg + 180),
      at(2 * walkS + turnS, p, s.yawDeg + 180),
      at(2 * walkS + 2 * turnS, p, s.yawDeg + 360),
    ],
  };
}

/** The turn-back path with memory on and off: last frame vs first, ghost voxels, free-space refusals. */
export async function turnBack(
  scene: Scene,
  modelName: string,
  loadModel: ModelLoader,
  size: { width?: number; height?: number } = {},
  onFrame?: () => void,
): Promise<TurnBackRow> {
  const path = turnBackPath(scene);
  const model = await loadModel(modelName, { scene, ...size });
  const info = model.describe();
  const poses = sampleTrajectory(path, info.fps);
  const run = (memory: boolean) =>
    drive({ scene, model, poses, director: { memory }, onFrame: onFrame && (() => onFrame()) });
  const on = await run(true);
  const off = await run(false);
  await model.dispose();
  const k = on.director.intrinsics;
  const first = renderScene(scene, poses[0]!, k, { timeS: 0 });
  const lastPsnr = (frames: readonly DirectedFrame[]): number => {
    const last = frames.at(-1)!;
    return cappedPsnr(
      last.rgb,
      first.rgb,
      staticPixels(k.width * k.height, first.dynamicMask, last.dynamicMask),
    );
  };
  const points: Vec3[] = [];
  on.director.memory.forEachVoxel((v) => points.push([v.x, v.y, v.z]));
  const times = poses.map((_p, i) => i / info.fps);
  const w = path.waypoints;
  return {
    scene: scene.name,
    model: info.name,
    walkM: Math.hypot(w[1]!.position[0] - w[0]!.position[0], w[1]!.position[2] - w[0]!.position[2]),
    psnrMemoryOn: lastPsnr(on.frames),
    psnrMemoryOff: lastPsnr(off.frames),
    ghostVoxels: countGhostPoints(scene, points, times, on.director.memory.voxelSizeM),
    freeSpaceRejected: on.director.freeSpaceRejected,
    frames: poses.length,
  };
}

export interface DriveOptions {
  /** The world's scene (its ground truth seeds the memory); without one, everything is invented. */
  readonly scene?: Scene;
  readonly model: WorldModel;
  readonly poses: readonly Pose[];
  readonly director?: DirectorOptions;
  readonly voxelSizeM?: number;
  readonly seed?: number;
  /** Memory to start from (default: a fresh one). */
  readonly memory?: SpatialMemory;
  /** Seed the world with the ground truth at poses[0] (the paper's initial image). Default true. */
  readonly seedWithGroundTruth?: boolean;
  readonly onFrame?: (frame: DirectedFrame, index: number) => void;
  /** Runs once the seed frame is in the memory, before the first generated clip (edits the memory). */
  readonly afterSeed?: (director: Director) => void;
}

/**
 * Walks `poses` with a director: the first pose is the seed frame (ground truth), the rest are
 * generated clip by clip (seed + clip index, world time = frame / fps). Returns the generated frames.
 */
export async function drive(opts: DriveOptions): Promise<{ director: Director; frames: DirectedFrame[] }> {
  const info = opts.model.describe();
  const memory = opts.memory ?? SpatialMemory.create(opts.voxelSizeM ?? DEFAULT_VOXEL_SIZE_M);
  const prompt = opts.scene ? promptForScene(opts.scene) : '';
  const director = new Director(memory, opts.model, { prompt, worldSeed: opts.seed ?? 1, ...opts.director });
  if (opts.scene && (opts.seedWithGroundTruth ?? true))
    seedFromScene(director, opts.scene, opts.poses[0]!, 0);
  opts.afterSeed?.(director);
  const frames: DirectedFrame[] = [];
  for (const plan of trajectoryClips(opts.poses, info.framesPerClip, info.fps, opts.seed ?? 1))
    for await (const f of playClip(director, plan)) {
      frames.push(f);
      opts.onFrame?.(f, frames.length);
    }
  return { director, frames };
}

/** Identical images report 100 dB instead of Infinity (JSON has no Infinity); an empty mask stays NaN. */
const PSNR_CAP_DB = 100;
export function cappedPsnr(a: Uint8Array, b: Uint8Array, mask?: Uint8Array): number {
  return Math.min(PSNR_CAP_DB, psnr(a, b, mask));
}

/** 1 on pixels that are static in both masks (dynamic content is not expected to match). */
function staticPixels(n: number, ...masks: (Uint8Array | undefined)[]): Uint8Array {
  const keep = new Uint8Array(n).fill(1);
  for (const m of masks) if (m) for (let p = 0; p < n; p++) if (m[p]) keep[p] = 0;
  return keep;
}

/**
 * Builds a model by name for a scene: the tools pass the registry's `loadModel` (the eval itself
 * loads nothing, so it runs anywhere the data path runs).
 */
export type ModelLoader = (
  name: string,
  settings: { scene: Scene; width?: number; height?: number },
) => Promise<WorldModel>;

export interface ClosedLoopOptions {
  readonly scene: Scene;
  readonly trajectory: Trajectory;
  readonly modelName: string;
  readonly loadModel: ModelLoader;
  readonly memory: boolean;
  readonly k: number;
  readonly width?: number;
  readonly height?: number;
  readonly onFrame?: () => void;
}

/** Closed loop (paper §4.3): generate around a loop that returns to its start; compare last with first. */
export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopRow> {
  const model = await o.loadModel(o.modelName, { scene: o.scene, width: o.width, height: o.height });
  const info = model.describe();
  const poses = sampleTrajectory(o.trajectory, info.fps);
  const { director, frames } = await drive({
    scene: o.scene,
    model,
    poses,
    director: { memory: o.memory, k: o.k },
    onFrame: o.onFrame,
  });
  const k = director.intrinsics;
  const first = renderScene(o.scene, poses[0]!, k, { timeS: 0 });
  const last = frames.at(-1)!;
  const mask = staticPixels(k.width * k.height, first.dynamicMask, last.dynamicMask);
  await model.dispose();
  return {
    scene: o.scene.name,
    model: info.name,
    memory: o.memory,
    k: o.k,
    psnr: cappedPsnr(last.rgb, first.rgb, mask),
    ssim: ssim(last.rgb, first.rgb, k.width, k.height, mask),
    frames: frames.length + 1,
  };
}

/**
 * Memory fidelity at held-out poses: the ground truth of every 8th pose of the trajectory is fused
 * at `voxelSizeM`; the memory is rendered at the poses halfway between (never fused) and compared
 * with the ground truth over the static pixels it covers within 20 m. Coverage is reported beside
 * it, since a coarser memory can look sharper by covering less.
 */
export function fidelity(
  scene: Scene,
  trajectory: Trajectory,
  voxelSizeM: number,
  k: Intrinsics,
): FidelityRow {
  const poses = sampleTrajectory(trajectory, 30);
  const memory = SpatialMemory.create(voxelSizeM);
  const STEP = 8;
  for (let i = 0; i < poses.length; i += STEP) {
    const gt = renderScene(scene, poses[i]!, k, { timeS: i / 30 });
    memory.fuse(gt, poses[i]!, k, { excludeMask: gt.dynamicMask });
  }
  let sum = 0;
  let coverage = 0;
  let n = 0;
  for (let i = STEP / 2; i < poses.length; i += STEP) {
    const gt = renderScene(scene, poses[i]!, k, { timeS: i / 30 });
    const view = memory.render(poses[i]!, k);
    const mask = staticPixels(k.width * k.height, gt.dynamicMask);
    let covered = 0;
    let inRange = 0;
    for (let p = 0; p < mask.length; p++) {
      if (!(gt.depth[p]! > 0 && gt.depth[p]! <= 20) || mask[p] === 0) {
        mask[p] = 0;
        continue;
      }
      inRange++;
      if (view.coverage[p]) covered++;
      else mask[p] = 0;
    }
    if (covered === 0) continue;
    sum += cappedPsnr(view.rgb, gt.rgb, mask);
    coverage += covered / inRange;
    n++;
  }
  return {
    scene: scene.name,
    voxelSize: voxelSizeM,
    psnr: n === 0 ? Number.NaN : sum / n,
    coverage: n === 0 ? 0 : coverage / n,
    voxels: memory.voxelCount,
  };
}

/**
 * Dynamic leakage: the oracle model walks the trajectory and the director fuses with the given
 * masking; ghost voxels are memory points inside a moving entity at any frame's time.
 */
export async function leakage(
  scene: Scene,
  trajectory: Trajectory,
  masking: DynamicMasking,
  size: { width?: number; height?: number } = {},
  onFrame?: () => void,
): Promise<LeakageRow> {
  const model = createLocalModel('scene', { scene, ...size });
  const info = model.describe();
  const poses = sampleTrajectory(trajectory, info.fps);
  const { director, frames } = await drive({
    scene,
    model,
    poses,
    director: { dynamicMasking: masking, k: 0 },
    onFrame,
  });
  let dynamicPixels = 0;
  for (const f of frames) if (f.dynamicMask) for (const v of f.dynamicMask) dynamicPixels += v;
  const points: Vec3[] = [];
  director.memory.forEachVoxel((v) => points.push([v.x, v.y, v.z]));
  const times = poses.map((_p, i) => i / info.fps);
  const ghostVoxels = countGhostPoints(scene, points, times, director.memory.voxelSizeM);
  return { scene: scene.name, masking, dynamicPixels, ghostVoxels };
}

/**
 * Drift: the scene is first explored (ground truth fused every `exploreEvery` poses of the loop),
 * then the model walks the whole loop, conditioned on and updating the memory; PSNR of every
 * generated frame against the ground truth renderer, static pixels within 20 m.
 */
export async function drift(
  scene: Scene,
  trajectory: Trajectory,
  modelName: string,
  loadModel: ModelLoader,
  size: { width?: number; height?: number } = {},
  onFrame?: () => void,
  exploreEvery = 10,
): Promise<DriftRow> {
  const model = await loadModel(modelName, { scene, ...size });
  const info = model.describe();
  const poses = sampleTrajectory(trajectory, info.fps);
  const memory = SpatialMemory.create(DEFAULT_VOXEL_SIZE_M);
  const probe = new Director(memory, model);
  const k = probe.intrinsics;
  for (let i = 0; i < poses.length; i += exploreEvery) {
    const gt = renderScene(scene, poses[i]!, k, { timeS: i / info.fps });
    memory.fuse(gt, poses[i]!, k, { excludeMask: gt.dynamicMask });
    memory.addKeyframe(gt, poses[i]!, k);
  }
  const perFrame: number[] = [];
  await drive({
    scene,
    model,
    poses,
    memory,
    onFrame: (f, i) => {
      const gt = renderScene(scene, poses[i]!, k, { timeS: i / info.fps });
      const mask = staticPixels(k.width * k.height, gt.dynamicMask, f.dynamicMask);
      for (let p = 0; p < mask.length; p++) if (!(gt.depth[p]! > 0 && gt.depth[p]! <= 20)) mask[p] = 0;
      perFrame.push(cappedPsnr(f.rgb, gt.rgb, mask));
      onFrame?.();
    },
  });
  await model.dispose();
  // Frames with no static pixel to compare (NaN) stay in the series as gaps.
  const finite = perFrame.filter((v) => !Number.isNaN(v));
  return {
    scene: scene.name,
    frames: perFrame.length,
    comparedFrames: finite.length,
    psnrMean: finite.reduce((a, b) => a + b, 0) / Math.max(1, finite.length),
    psnrMin: Math.min(...finite),
    perFrame,
  };
}
