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
import { DISPLAY_CAMERA_UNIFORMS, setDisplayCamera } from './displayCamera.ts';

/**
 * The sky the frames showed, kept by direction: pixels without depth (sky) are averaged into a
 * small equirectangular panorama, and directions never seen take the mean of their elevation (or
 * the nearest seen elevation above the lowest sky seen). Drawn behind everything, so turning towards a direction the last
 * frame did not show still shows sky rather than the clear colour once any sky was seen.
 */
const PANO_W = 128;
const PANO_H = 64;
/** Observations a texel's mean counts at most: newer frames (a new prompt) take over. */
const MAX_WEIGHT = 16;

const VERTEX = `
precision highp float;
attribute vec3 position;
void main(void) {
  gl_Position = vec4(position.xy, 0.999, 1.0);
}`;
const FRAGMENT = `
precision highp float;
uniform vec3 camPos;
uniform vec3 r0;
uniform vec3 r1;
uniform vec3 r2;
uniform vec4 intr;
uniform vec2 size;
uniform sampler2D pano;
const float PI = 3.14159265;
void main(void) {
  vec2 px = vec2(gl_FragCoord.x - 0.5, size.y - gl_FragCoord.y - 0.5);
  vec3 d = vec3((px.x - intr.z) / intr.x, (px.y - intr.w) / intr.y, 1.0);
  vec3 w = normalize(d.x * r0 + d.y * r1 + d.z * r2);
  float u = atan(w.x, -w.z) / (2.0 * PI) + 0.5;
  float v = 0.5 - asin(clamp(w.y, -1.0, 1.0)) / PI;
  vec4 c = texture2D(pano, vec2(u, 1.0 - v));
  if (c.a < 0.5) discard;
  gl_FragColor = vec4(c.rgb, 1.0);
}`;

export class SkyDome {
  private readonly material: ShaderMaterial;
  private readonly texture: DynamicTexture;
  private readonly mesh: Mesh;
  private readonly sums = new Float32Array(PANO_W * PANO_H * 4);
  private readonly sampler: OffscreenCanvas;
  /** Sky samples taken so far. */
  samples = 0;

  constructor(scene: Scene, group: number) {
    Effect.ShadersStore.skyVertexShader = VERTEX;
    Effect.ShadersStore.skyFragmentShader = FRAGMENT;
    this.material = new ShaderMaterial(
      'sky',
      scene,
      { vertex: 'sky', fragment: 'sky' },
      { attributes: ['position'], uniforms: DISPLAY_CAMERA_UNIFORMS, samplers: ['pano'] },
    );
    this.material.backFaceCulling = false;
    this.texture = new DynamicTexture(
      'sky',
      { width: PANO_W, height: PANO_H },
      scene,
      false,
      Constants.TEXTURE_BILINEAR_SAMPLINGMODE,
    );
    this.texture.wrapU = Constants.TEXTURE_WRAP_ADDRESSMODE;
    this.texture.wrapV = Constants.TEXTURE_CLAMP_ADDRESSMODE;
    this.material.setTexture('pano', this.texture);
    this.mesh = new Mesh('sky', scene);
    const vd = new VertexData();
    vd.positions = [-1, -1, 0, 1, -1, 0, -1, 1, 0, 1, 1, 0];
    vd.indices = [0, 1, 2, 1, 3, 2];
    vd.applyToMesh(this.mesh);
    this.mesh.material = this.material;
    this.mesh.alwaysSelectAsActiveMesh = true;
    this.mesh.isPickable = false;
    this.mesh.renderingGroupId = group;
    this.mesh.isVisible = false;
    this.sampler = new OffscreenCanvas(1, 1);
  }

  /** Takes the sky pixels of a decoded frame (sampled at its depth resolution). */
  addFrame(frame: EncodedFrame, image: ImageBitmap): void {
    const { depthWidth: w, depthHeight: h, depthMm } = frame;
    if (!depthMm.includes(0)) return;
    this.sampler.width = w;
    this.sampler.height = h;
    const ctx = this.sampler.getContext('2d', { willReadFrequently: true })!;
    ctx.drawImage(image, 0, 0, w, h);
    const rgb = ctx.getImageData(0, 0, w, h).data;
    const k = frame.header.intrinsics;
    const r = frame.header.rotation;
    const scale = k.width / w;
    const sums = this.sums;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (depthMm[i] !== 0) continue;
        const dx = (x * scale + scale / 2 - 0.5 - k.cx) / k.fx;
        const dy = (y * scale + scale / 2 - 0.5 - k.cy) / k.fy;
        const wx = r[0]! * dx + r[1]! * dy + r[2]!;
        const wy = r[3]! * dx + r[4]! * dy + r[5]!;
        const wz = r[6]! * dx + r[7]! * dy + r[8]!;
        const n = Math.hypot(wx, wy, wz);
        const u = Math.atan2(wx, -wz) / (2 * Math.PI) + 0.5;
        const v = 0.5 - Math.asin(Math.max(-1, Math.min(1, wy / n))) / Math.PI;
        const t =
          (Math.min(PANO_H - 1, Math.floor(v * PANO_H)) * PANO_W + (Math.floor(u * PANO_W) % PANO_W)) * 4;
        // A running mean whose weight stops growing at MAX_WEIGHT.
        const weight = Math.min(MAX_WEIGHT, sums[t + 3]! + 1);
        for (let c = 0; c < 3; c++) sums[t + c]! += (rgb[i * 4 + c]! - sums[t + c]!) / weight;
        sums[t + 3] = weight;
        this.samples++;
      }
    this.upload();
  }

  private upload(): void {
    const sums = this.sums;
    const out = new ImageData(PANO_W, PANO_H);
    const rowMean: (number[] | undefined)[] = [];
    for (let y = 0; y < PANO_H; y++) {
      let n = 0;
      const m = [0, 0, 0];
      for (let x = 0; x < PANO_W; x++) {
        const t = (y * PANO_W + x) * 4;
        if (sums[t + 3] === 0) continue;
        n++;
        for (let c = 0; c < 3; c++) m[c]! += sums[t + c]!;
      }
      rowMean.push(n > 0 ? m.map((v) => v / n) : undefined);
    }
    // Unseen elevations above the lowest seen sky take the nearest seen one; below it the ground
    // is the memory's to show (or nothing).
    let lowest = PANO_H - 1;
    while (lowest >= 0 && !rowMean[lowest]) lowest--;
    for (let y = 0; y <= lowest; y++) {
      let fill = rowMean[y];
      for (let dy = 1; !fill && dy < PANO_H; dy++) fill = rowMean[y - dy] ?? rowMean[y + dy];
      for (let x = 0; x < PANO_W; x++) {
        const t = (y * PANO_W + x) * 4;
        const seen = sums[t + 3]! > 0;
        const src = seen ? [sums[t]!, sums[t + 1]!, sums[t + 2]!] : fill;
        if (!src) continue;
        out.data.set([src[0]!, src[1]!, src[2]!, 255], t);
      }
    }
    const ctx = this.texture.getContext() as unknown as CanvasRenderingContext2D;
    ctx.putImageData(out, 0, 0);
    this.texture.update(true);
    this.mesh.isVisible = this.samples > 0;
  }

  prepare(pose: Pose, k: Intrinsics): void {
    setDisplayCamera(this.material, pose, k);
  }
}
