import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, validatePose } from '../../shared/camera/pose.ts';
import type { VoxelChunk } from './voxelChunk.ts';
import type { VoxelGrid } from './voxelGrid.ts';

/** The memory rendered at a camera: what the world model is conditioned on. */
export interface MemoryView {
  readonly width: number;
  readonly height: number;
  /** Packed RGB; 0 where not covered. */
  readonly rgb: Uint8Array;
  /** Camera z in metres; 0 where not covered. */
  readonly depth: Float32Array;
  /** 1 where the memory covers the pixel, else 0. */
  readonly coverage: Uint8Array;
  /** Per pixel: (index into `chunks`) · 2^15 + voxel slot, or −1 where not covered. */
  readonly voxelRef: Int32Array;
  /** The chunks `voxelRef` points into (those that survived culling). */
  readonly chunks: readonly VoxelChunk[];
}

/**
 * Voxel points are centroids, so neighbours can sit up to two voxels apart on oblique surfaces;
 * splats of twice the voxel's projected size close those gaps (measured: held-out PSNR on the
 * room at 1 cm rises from 20.7 dB at 1× to 26.7 dB at 2×).
 */
export const DEFAULT_SPLAT_SCALE = 2;

export interface RenderViewOptions {
  /** Splat edge relative to the voxel's projected size (default 2: closes oblique surfaces too). */
  readonly splatScale?: number;
  readonly nearM?: number;
  readonly farM?: number;
}

/**
 * Renders the memory at a camera as z-buffered square splats, one per voxel, each as wide as the
 * voxel's projected size so that surfaces close without holes. Chunks outside the view frustum
 * are culled with a bounding-sphere test. Cost: O(voxels in visible chunks + splat pixels).
 *
 * pose: camera-to-world, OpenCV axes.
 */
export function renderMemoryView(
  grid: VoxelGrid,
  pose: Pose,
  k: Intrinsics,
  opts: RenderViewOptions = {},
): MemoryView {
  validateIntrinsics(k);
  validatePose(pose);
  const { width, height, fx, fy, cx, cy } = k;
  const splatScale = opts.splatScale ?? DEFAULT_SPLAT_SCALE;
  const near = opts.nearM ?? 0.05;
  const far = opts.farM ?? 1e9;
  const n = width * height;
  const zbuf = new Float32Array(n).fill(Number.POSITIVE_INFINITY);
  const voxelRef = new Int32Array(n).fill(-1);
  const chunks: VoxelChunk[] = [];

  // World-to-camera: Xc = Rᵀ·(Xw − t).
  const r = pose.rotation;
  const [px, py, pz] = pose.position;
  const step = grid.positionStepM;
  const m00 = r[0] * step,
    m01 = r[3] * step,
    m02 = r[6] * step;
  const m10 = r[1] * step,
    m11 = r[4] * step,
    m12 = r[7] * step;
  const m20 = r[2] * step,
    m21 = r[5] * step,
    m22 = r[8] * step;
  const chunkSize = grid.chunkSizeM;
  const radius = (chunkSize * Math.sqrt(3)) / 2;
  // Frustum side planes through the camera centre, as unit normals in camera coordinates.
  const planes: number[][] = [
    [fx, 0, cx + 0.5],
    [-fx, 0, width - 0.5 - cx],
    [0, fy, cy + 0.5],
    [0, -fy, height - 0.5 - cy],
  ].map(([a, b, c]) => {
    const l = Math.hypot(a!, b!, c!);
    return [a! / l, b! / l, c! / l];
  });
  const splatK = grid.voxelSizeM * fx * splatScale;
  const xMax = width - 0.5;
  const yMax = height - 0.5;

  for (const chunk of grid.chunks()) {
    if (chunk.count === 0) continue;
    const ox = chunk.cx * chunkSize - px;
    const oy = chunk.cy * chunkSize - py;
    const oz = chunk.cz * chunkSize - pz;
    // Chunk centre in camera coordinates, for culling.
    const h = chunkSize / 2;
    const ccx = r[0] * (ox + h) + r[3] * (oy + h) + r[6] * (oz + h);
    const ccy = r[1] * (ox + h) + r[4] * (oy + h) + r[7] * (oz + h);
    const ccz = r[2] * (ox + h) + r[5] * (oy + h) + r[8] * (oz + h);
    if (ccz + radius < near || ccz - radius > far) continue;
    let outside = false;
    for (const p of planes) {
      if (p[0]! * ccx + p[1]! * ccy + p[2]! * ccz < -radius) {
        outside = true;
        break;
      }
    }
    if (outside) continue;
    const chunkIndex = chunks.length;
    chunks.push(chunk);
    const refBase = chunkIndex * 32768;
    const bx = r[0] * ox + r[3] * oy + r[6] * oz;
    const by = r[1] * ox + r[4] * oy + r[7] * oz;
    const bz = r[2] * ox + r[5] * oy + r[8] * oz;
    const pos = chunk.pos;
    const count = chunk.count;
    for (let s = 0, s3 = 0; s < count; s++, s3 += 3) {
      const qx = pos[s3]!,
        qy = pos[s3 + 1]!,
        qz = pos[s3 + 2]!;
      const z = bz + m20 * qx + m21 * qy + m22 * qz;
      if (z <= near || z > far) continue;
      const iz = 1 / z;
      const u = fx * (bx + m00 * qx + m01 * qy + m02 * qz) * iz + cx;
      const v = fy * (by + m10 * qx + m11 * qy + m12 * qz) * iz + cy;
      const size = splatK * iz;
      if (size <= 1) {
        if (u < -0.5 || v < -0.5 || u >= xMax || v >= yMax) continue;
        const p = ((v + 0.5) | 0) * width + ((u + 0.5) | 0);
        if (z < zbuf[p]!) {
          zbuf[p] = z;
          voxelRef[p] = refBase + s;
        }
      } else {
        const half = size * 0.5;
        let x0 = Math.ceil(u - half),
          x1 = Math.floor(u + half);
        let y0 = Math.ceil(v - half),
          y1 = Math.floor(v + half);
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 >= width) x1 = width - 1;
        if (y1 >= height) y1 = height - 1;
        for (let y = y0; y <= y1; y++) {
          const row = y * width;
          for (let x = x0; x <= x1; x++) {
            const p = row + x;
            if (z < zbuf[p]!) {
              zbuf[p] = z;
              voxelRef[p] = refBase + s;
            }
          }
        }
      }
    }
  }

  // Resolve: colour and depth of the winning voxel per pixel.
  const rgb = new Uint8Array(n * 3);
  const depth = new Float32Array(n);
  const coverage = new Uint8Array(n);
  let lastChunk = -1;
  let color: Uint16Array | undefined;
  for (let p = 0; p < n; p++) {
    const ref = voxelRef[p]!;
    if (ref < 0) continue;
    const ci = ref >>> 15;
    if (ci !== lastChunk) {
      color = chunks[ci]!.color;
      lastChunk = ci;
    }
    const c3 = (ref & 32767) * 3;
    rgb[p * 3] = (color![c3]! + 128) >>> 8;
    rgb[p * 3 + 1] = (color![c3 + 1]! + 128) >>> 8;
    rgb[p * 3 + 2] = (color![c3 + 2]! + 128) >>> 8;
    depth[p] = zbuf[p]!;
    coverage[p] = 1;
  }
  return { width, height, rgb, depth, coverage, voxelRef, chunks };
}
