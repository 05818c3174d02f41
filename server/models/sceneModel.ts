import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import {
  type ClipRequest,
  describeCpuModel,
  type GeneratedFrame,
  type ModelFrameOptions,
  validateClipRequest,
  type WorldModel,
  type WorldModelInfo,
} from './worldModel.ts';

export type SceneModelOptions = ModelFrameOptions;

/**
 * The oracle: a "world model" that renders a known scene exactly (RGB, depth, dynamic mask) and
 * ignores its conditioning. It is the upper bound in the eval and the ground truth for leakage
 * and drift, and it lets tests drive the director with content whose truth is known.
 */
export class SceneModel implements WorldModel {
  private readonly info: WorldModelInfo;
  readonly intrinsics: Intrinsics;

  constructor(
    readonly scene: Scene,
    opts: SceneModelOptions = {},
  ) {
    ({ info: this.info, intrinsics: this.intrinsics } = describeCpuModel('scene', opts));
  }

  describe(): WorldModelInfo {
    return this.info;
  }

  async *generate(req: ClipRequest): AsyncGenerator<GeneratedFrame> {
    validateClipRequest(req, this.info);
    for (let i = 0; i < req.poses.length; i++) {
      if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
      const t0 = performance.now();
      const f = renderScene(this.scene, req.poses[i]!, req.intrinsics, {
        timeS: req.timeS + i / this.info.fps,
      });
      yield {
        index: i,
        rgb: f.rgb,
        depth: f.depth,
        dynamicMask: f.dynamicMask,
        generateMs: performance.now() - t0,
      };
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async dispose(): Promise<void> {}
}
