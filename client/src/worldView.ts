import { FreeCamera } from '@babylonjs/core/Cameras/freeCamera';
import { Engine } from '@babylonjs/core/Engines/engine';
import { Color4 } from '@babylonjs/core/Maths/math.color';
import { Vector3 } from '@babylonjs/core/Maths/math.vector';
import { Scene } from '@babylonjs/core/scene';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { MirrorView } from './mirrorView.ts';
import { BACKGROUND_GROUP, Reprojector, SKY_GROUP } from './reprojector.ts';
import { SkyDome } from './skyDome.ts';

/** The colour of pixels nothing covers (tests count them). */
const CLEAR_COLOR = new Color4(0.07, 0.07, 0.08, 1);

/**
 * What the canvas shows, drawn at the predicted camera every display frame, back to front: the sky
 * the frames showed, the memory mirror (with the newest frame's filled background), and the newest
 * generated frame on top while it is fresh. Each layer sits in its own rendering group, so the
 * frame covers the mirror where it has a surface and the mirror fills its holes.
 */
export class WorldView {
  readonly engine: Engine;
  readonly scene: Scene;
  readonly sky: SkyDome;
  readonly mirror: MirrorView;
  readonly frames: Reprojector;

  /** `mirrorRegionBits`: see MirrorView (the bench compares a draw per chunk). */
  constructor(canvas: HTMLCanvasElement, frameWidth: number, frameHeight: number, mirrorRegionBits?: number) {
    this.engine = new Engine(canvas, false, { preserveDrawingBuffer: true, stencil: false });
    this.scene = new Scene(this.engine);
    this.scene.clearColor = CLEAR_COLOR;
    // The shaders do their own projection; Babylon needs a camera to render at all.
    new FreeCamera('unused', new Vector3(0, 0, -1), this.scene);
    this.sky = new SkyDome(this.scene, SKY_GROUP);
    this.mirror = new MirrorView(this.scene, BACKGROUND_GROUP, mirrorRegionBits);
    this.frames = new Reprojector(this.scene, frameWidth, frameHeight);
  }

  /** Draws one display frame from `pose`; the generated frame only when `frameFresh`. */
  render(pose: Pose, k: Intrinsics, frameFresh: boolean): void {
    this.sky.prepare(pose, k);
    this.mirror.prepare(pose, k);
    this.frames.prepare(pose, k, frameFresh);
    this.scene.render();
  }

  resize(): void {
    this.engine.resize();
  }
}
