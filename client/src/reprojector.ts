import { VertexBuffer } from '@babylonjs/core/Buffers/buffer';
import { Constants } from '@babylonjs/core/Engines/constants';
import { Effect } from '@babylonjs/core/Materials/effect';
import { ShaderMaterial } from '@babylonjs/core/Materials/shaderMaterial';
import { DynamicTexture } from '@babylonjs/core/Materials/Textures/dynamicTexture';
import { Mesh } from '@babylonjs/core/Meshes/mesh';
import { VertexData } from '@babylonjs/core/Meshes/mesh.vertexData';
import type { Scene } from '@babylonjs/core/scene';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { EncodedFrame } from '../../shared/protocol/frameCodec.ts';
import { DISPLAY_CAMERA_UNIFORMS, PROJECT_GLSL, setDisplayCamera } from './displayCamera.ts';
import { FILL_H, FILL_W } from './holeFiller.ts';

/** Rendering groups: the sky, then the memory mirror with the frame's filled background, then the frame on top. */
export const SKY_GROUP = 0;
export const BACKGROUND_GROUP = 1;
const FRAME_GROUP = 2;

/**
 * Shows the newest server frame at the player's *current* (predicted) camera: the frame's depth,
 * sampled on a grid, becomes a mesh in world space that is drawn from the current pose with the
 * frame as its texture. Between server frames the view moves at display rate; where the new view
 * looks past the frame's edge, the filled background shows, and the memory mirror wherever the
 * frame has no triangle (depth edges, turns).
 */
const VERTEX = `
precision highp float;
attribute vec3 position;
attribute vec2 uv;
${PROJECT_GLSL}
varying vec2 vUV;
void main(void) {
  gl_Position = project(position);
  vUV = uv;
}`;
const FRAGMENT = `
precision highp float;
varying vec2 vUV;
uniform sampler2D frame;
void main(void) {
  gl_FragColor = vec4(texture2D(frame, vUV).rgb, 1.0);
}`;

/** Depth jump (relative) beyond which two neighbouring samples are not joined by a triangle. */
const EDGE_JUMP = 0.08;
/** Where pixels without depth (sky) are put: far enough that only rotation moves them. */
const SKY_DEPTH_M = 1000;

export class Reprojector {
  private readonly material: ShaderMaterial;
  private readonly texture: DynamicTexture;
  private mesh: Mesh | undefined;
  private readonly bgMaterial: ShaderMaterial;
  private readonly bgTexture: DynamicTexture;
  private bgMesh: Mesh | undefined;
  private gridW = 0;
  private gridH = 0;
  /** Frames drawn since creation (the e2e test reads it). */
  drawn = 0;

  constructor(
    private readonly scene: Scene,
    private readonly width: number,
    private readonly height: number,
  ) {
    Effect.ShadersStore.reprojectVertexShader = VERTEX;
    Effect.ShadersStore.reprojectFragmentShader = FRAGMENT;
    this.material = new ShaderMaterial(
      'reproject',
      this.scene,
      { vertex: 'reproject', fragment: 'reproject' },
      {
        attributes: ['position', 'uv'],
        uniforms: DISPLAY_CAMERA_UNIFORMS,
        samplers: ['frame'],
      },
    );
    this.material.backFaceCulling = false;
    this.texture = new DynamicTexture(
      'frame',
      { width, height },
      this.scene,
      false,
      Constants.TEXTURE_BILINEAR_SAMPLINGMODE,
    );
    this.texture.wrapU = Constants.TEXTURE_CLAMP_ADDRESSMODE;
    this.texture.wrapV = Constants.TEXTURE_CLAMP_ADDRESSMODE;
    this.material.setTexture('frame', this.texture);
    // The background: the hole filler's extended frame, far away, drawn first.
    this.bgMaterial = this.material.clone('reproject-background');
    this.bgMaterial.backFaceCulling = false;
    this.bgTexture = new DynamicTexture(
      'background',
      { width: FILL_W, height: FILL_H },
      this.scene,
      false,
      Constants.TEXTURE_BILINEAR_SAMPLINGMODE,
    );
    this.bgTexture.wrapU = Constants.TEXTURE_CLAMP_ADDRESSMODE;
    this.bgTexture.wrapV = Constants.TEXTURE_CLAMP_ADDRESSMODE;
    this.bgMaterial.setTexture('frame', this.bgTexture);
  }

  /**
   * Sets the background: `filled` covers the frame's view extended by `scale` (1.25 = 12.5% more on
   * each side), placed at infinity along the frame's camera rays.
   */
  setBackground(frame: EncodedFrame, filled: ImageData, scale: number): void {
    const ctx = this.bgTexture.getContext() as unknown as CanvasRenderingContext2D;
    ctx.putImageData(filled, 0, 0);
    this.bgTexture.update(true);
    const h = frame.header;
    const k = h.intrinsics;
    const r = h.rotation;
    const t = h.position;
    const positions: number[] = [];
    const uvs: number[] = [];
    for (const [u, v] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ] as const) {
      const px = (u - 0.5) * k.width * scale + k.width / 2 - 0.5;
      const py = (v - 0.5) * k.height * scale + k.height / 2 - 0.5;
      const d = SKY_DEPTH_M;
      const cx = ((px - k.cx) / k.fx) * d;
      const cy = ((py - k.cy) / k.fy) * d;
      positions.push(
        r[0]! * cx + r[1]! * cy + r[2]! * d + t[0]!,
        r[3]! * cx + r[4]! * cy + r[5]! * d + t[1]!,
        r[6]! * cx + r[7]! * cy + r[8]! * d + t[2]!,
      );
      uvs.push(u, 1 - v);
    }
    if (!this.bgMesh) {
      this.bgMesh = new Mesh('background', this.scene);
      const vd = new VertexData();
      vd.positions = positions;
      vd.uvs = uvs;
      vd.indices = [0, 2, 1, 1, 2, 3];
      vd.applyToMesh(this.bgMesh, true);
      this.bgMesh.material = this.bgMaterial;
      this.bgMesh.alwaysSelectAsActiveMesh = true;
      this.bgMesh.renderingGroupId = BACKGROUND_GROUP;
    } else {
      this.bgMesh.updateVerticesData(VertexBuffer.PositionKind, positions);
    }
  }

  /** Takes a decoded frame: its image goes to the texture, its depth becomes the mesh. */
  setFrame(frame: EncodedFrame, image: ImageBitmap): void {
    const ctx = this.texture.getContext() as unknown as CanvasRenderingContext2D;
    ctx.drawImage(image, 0, 0, this.width, this.height);
    this.texture.update(true);
    this.buildMesh(frame);
  }

  private buildMesh(frame: EncodedFrame): void {
    const { depthWidth: gw, depthHeight: gh, depthMm } = frame;
    const h = frame.header;
    const k = h.intrinsics;
    const factor = k.width / gw;
    const positions = new Float32Array(gw * gh * 3);
    const uvs = new Float32Array(gw * gh * 2);
    const r = h.rotation;
    const t = h.position;
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        const i = y * gw + x;
        const px = x * factor + (factor >> 1);
        const py = y * factor + (factor >> 1);
        const mm = depthMm[i]!;
        const d = mm > 0 ? mm / 1000 : SKY_DEPTH_M;
        const cx = ((px - k.cx) / k.fx) * d;
        const cy = ((py - k.cy) / k.fy) * d;
        positions[i * 3] = r[0]! * cx + r[1]! * cy + r[2]! * d + t[0]!;
        positions[i * 3 + 1] = r[3]! * cx + r[4]! * cy + r[5]! * d + t[1]!;
        positions[i * 3 + 2] = r[6]! * cx + r[7]! * cy + r[8]! * d + t[2]!;
        uvs[i * 2] = (px + 0.5) / k.width;
        uvs[i * 2 + 1] = 1 - (py + 0.5) / k.height;
      }
    }
    const indices: number[] = [];
    const depthAt = (i: number): number => (depthMm[i]! > 0 ? depthMm[i]! : SKY_DEPTH_M * 1000);
    for (let y = 0; y + 1 < gh; y++) {
      for (let x = 0; x + 1 < gw; x++) {
        const a = y * gw + x;
        const b = a + 1;
        const c = a + gw;
        const e = c + 1;
        const ds = [depthAt(a), depthAt(b), depthAt(c), depthAt(e)];
        const lo = Math.min(...ds);
        const hi = Math.max(...ds);
        if (hi - lo > EDGE_JUMP * lo) continue; // a depth edge: leave a hole, not a rubber sheet
        indices.push(a, c, b, b, c, e);
      }
    }
    if (!this.mesh || this.gridW !== gw || this.gridH !== gh) {
      this.mesh?.dispose();
      this.mesh = new Mesh('frame-mesh', this.scene);
      const vd = new VertexData();
      vd.positions = positions;
      vd.uvs = uvs;
      vd.indices = indices;
      vd.applyToMesh(this.mesh, true);
      this.mesh.material = this.material;
      this.mesh.alwaysSelectAsActiveMesh = true;
      this.mesh.renderingGroupId = FRAME_GROUP;
      this.gridW = gw;
      this.gridH = gh;
    } else {
      this.mesh.updateVerticesData(VertexBuffer.PositionKind, positions);
      this.mesh.updateVerticesData(VertexBuffer.UVKind, uvs);
      this.mesh.setIndices(indices);
    }
  }

  /**
   * Sets the display camera for the next draw; a frame that is not `fresh` is not drawn (the
   * mirror and the sky show instead).
   */
  prepare(pose: Pose, k: Intrinsics, fresh: boolean): void {
    for (const m of [this.material, this.bgMaterial]) setDisplayCamera(m, pose, k);
    if (this.mesh) this.mesh.isVisible = fresh;
    if (this.bgMesh) this.bgMesh.isVisible = fresh;
    if (this.mesh && fresh) this.drawn++;
  }
}
