import { modelIntrinsics } from '../../server/models/worldModel.ts';
import { loadBundledScene } from '../../server/scene/loadScene.ts';
import { type GroundTruthFrame, renderScene } from '../../server/scene/rayCaster.ts';
import type { Scene } from '../../server/scene/sceneFormat.ts';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, poseLookAt } from '../../shared/camera/pose.ts';

/** The product's default camera (MODEL_DEFAULTS: 512×288, 75° horizontal field of view). */
export const K512: Intrinsics = modelIntrinsics();
/** A smaller camera for tests that need many frames. */
export const K256: Intrinsics = modelIntrinsics(256, 144);

export interface Shot {
  readonly pose: Pose;
  readonly frame: GroundTruthFrame;
}

export function sceneNamed(name: 'room' | 'courtyard' | 'hall-dynamic'): Scene {
  return loadBundledScene(name);
}

/** Ground truth at the scene's i-th viewpoint. */
export function shotAt(scene: Scene, i: number, k: Intrinsics = K512, timeS = 0): Shot {
  const vp = scene.viewpoints[i];
  if (!vp) throw new Error(`scene ${scene.name} has no viewpoint ${i}`);
  const pose = poseLookAt(vp.eye, vp.target);
  return { pose, frame: renderScene(scene, pose, k, { timeS }) };
}

/** 1 where ground-truth depth is in (0, maxDepthM], else 0. */
export function depthMask(depth: Float32Array, maxDepthM = 20): Uint8Array {
  const m = new Uint8Array(depth.length);
  for (let i = 0; i < depth.length; i++) m[i] = depth[i]! > 0 && depth[i]! <= maxDepthM ? 1 : 0;
  return m;
}
