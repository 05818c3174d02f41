import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { VoxelChunk } from './voxelChunk.ts';

/**
 * A camera's view frustum for culling chunks by their bounding spheres (the render and the
 * seen-through pruning walk the same chunks). pose: camera-to-world, OpenCV axes.
 */
export class ChunkFrustum {
  private readonly planes: Float64Array;
  private readonly radius: number;

  constructor(
    private readonly pose: Pose,
    k: Intrinsics,
    private readonly chunkSizeM: number,
    private readonly nearM: number,
    private readonly farM: number,
  ) {
    const { width, height, fx, fy, cx, cy } = k;
    // Side planes through the camera centre, as unit normals in camera coordinates.
    const sides = [
      [fx, 0, cx + 0.5],
      [-fx, 0, width - 0.5 - cx],
      [0, fy, cy + 0.5],
      [0, -fy, height - 0.5 - cy],
    ];
    this.planes = new Float64Array(12);
    sides.forEach(([a, b, c], i) => {
      const l = Math.hypot(a!, b!, c!);
      this.planes.set([a! / l, b! / l, c! / l], i * 3);
    });
    this.radius = (chunkSizeM * Math.sqrt(3)) / 2;
  }

  /** Camera z of the chunk's centre, or NaN when its bounding sphere lies wholly outside. */
  centreDepth(chunk: VoxelChunk): number {
    const r = this.pose.rotation;
    const [px, py, pz] = this.pose.position;
    const h = this.chunkSizeM / 2;
    const ox = chunk.cx * this.chunkSizeM - px + h;
    const oy = chunk.cy * this.chunkSizeM - py + h;
    const oz = chunk.cz * this.chunkSizeM - pz + h;
    const x = r[0] * ox + r[3] * oy + r[6] * oz;
    const y = r[1] * ox + r[4] * oy + r[7] * oz;
    const z = r[2] * ox + r[5] * oy + r[8] * oz;
    const rad = this.radius;
    if (z + rad < this.nearM || z - rad > this.farM) return Number.NaN;
    const p = this.planes;
    for (let i = 0; i < 12; i += 3) if (p[i]! * x + p[i + 1]! * y + p[i + 2]! * z < -rad) return Number.NaN;
    return z;
  }

  /**
   * The affine map from a chunk's quantised record positions q (steps of `positionStepM` from the
   * chunk's corner) to camera coordinates, X_c = b + M·q: writes b to out[0..2] and M (row-major,
   * Rᵀ scaled by the step) to out[3..11].
   */
  recordTransform(chunk: VoxelChunk, positionStepM: number, out: Float64Array): void {
    const r = this.pose.rotation;
    const [px, py, pz] = this.pose.position;
    const ox = chunk.cx * this.chunkSizeM - px;
    const oy = chunk.cy * this.chunkSizeM - py;
    const oz = chunk.cz * this.chunkSizeM - pz;
    for (let i = 0; i < 3; i++) {
      out[i] = r[i]! * ox + r[3 + i]! * oy + r[6 + i]! * oz;
      out[3 + 3 * i] = r[i]! * positionStepM;
      out[4 + 3 * i] = r[3 + i]! * positionStepM;
      out[5 + 3 * i] = r[6 + i]! * positionStepM;
    }
  }

  /** Bounding-sphere radius of a chunk, metres. */
  get chunkRadiusM(): number {
    return this.radius;
  }
}
