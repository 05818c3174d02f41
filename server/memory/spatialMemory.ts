import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { RgbdImage } from '../../shared/image.ts';
import { freeSpaceViolations } from './freeSpace.ts';
import { type FuseOptions, type FuseStats, fuseFrame } from './fuse.ts';
import { type Keyframe, KeyframeStore, type RetrievalHit, type RetrieveOptions } from './keyframes.ts';
import { exportPly, importPly } from './ply.ts';
import { type MemoryView, type RenderViewOptions, renderMemoryView } from './renderView.ts';
import { loadSnapshot, saveSnapshot } from './snapshot.ts';
import { type TopDownMap, topDownMap } from './topDownMap.ts';
import { type ViewSignature, viewSignature } from './visibility.ts';
import { CONF, STRIDE } from './voxelChunk.ts';
import { VoxelGrid, type VoxelRecord } from './voxelGrid.ts';

/** Confidence (0–255) above which a surface is trusted enough to call contradictions of it dynamic. */
const CONFIDENT = 96;

export interface MemoryStats {
  readonly voxels: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly keyframes: number;
  readonly voxelSizeM: number;
}

/**
 * The spatial memory of one world: the voxel grid plus the keyframe store, with the operations the
 * director needs. A thin composition of the pure data-path modules (fuse, renderView, visibility,
 * keyframes, ply, snapshot); it does no I/O.
 */
export class SpatialMemory {
  constructor(
    readonly grid: VoxelGrid,
    readonly keyframes: KeyframeStore = new KeyframeStore(),
  ) {}

  /** An empty memory with the given voxel edge in metres. */
  static create(voxelSizeM: number): SpatialMemory {
    return new SpatialMemory(new VoxelGrid(voxelSizeM));
  }

  /** Fuses an RGB-D frame seen from `pose` (camera-to-world); `excludeMask` marks moving pixels. */
  fuse(frame: RgbdImage, pose: Pose, k: Intrinsics, opts?: FuseOptions): FuseStats {
    return fuseFrame(this.grid, frame, pose, k, opts);
  }

  /** Edge of a voxel, metres. */
  get voxelSizeM(): number {
    return this.grid.voxelSizeM;
  }

  get voxelCount(): number {
    return this.grid.voxelCount;
  }

  /** Grows whenever a voxel changes: a view rendered at an earlier revision may be stale. */
  get revision(): number {
    return this.grid.revision;
  }

  /** Calls `fn` with every voxel (world metres, colour, count, confidence). */
  forEachVoxel(fn: (v: VoxelRecord) => void): void {
    this.grid.forEachVoxel(fn);
  }

  /** The memory seen from above, `pxPerM` pixels per metre (the minimap). */
  topDownMap(pxPerM: number): TopDownMap {
    return topDownMap(this.grid, pxPerM);
  }

  /**
   * Pixels whose `depth` (camera z, metres) disagrees with a confident surface of `view` by more
   * than three voxels (or 3% of the depth): something moved in front of it, or it is gone.
   */
  contradictions(depth: Float32Array, view: MemoryView): Uint8Array {
    const voxelSizeM = this.grid.voxelSizeM;
    const mask = new Uint8Array(depth.length);
    const { voxelRef, chunks } = view;
    for (let p = 0; p < depth.length; p++) {
      const ref = voxelRef[p]!;
      if (ref < 0) continue;
      const conf = chunks[ref >>> 15]!.data[(ref & 32767) * STRIDE + CONF]!;
      if (conf < CONFIDENT) continue;
      const dm = view.depth[p]!;
      const tol = Math.max(3 * voxelSizeM, 0.03 * dm);
      if (Math.abs(depth[p]! - dm) > tol) mask[p] = 1;
    }
    return mask;
  }

  /**
   * Pixels whose `depth` (camera z, metres; 0 = none), seen from `pose` where the memory rendered
   * `view`, puts a surface inside space the memory knows to be empty: a contradiction a generated
   * frame must not write into it.
   */
  freeSpaceViolations(depth: Float32Array, view: MemoryView, pose: Pose, k: Intrinsics): Uint8Array {
    return freeSpaceViolations(this.grid, depth, view.depth, pose, k);
  }

  /** Renders RGB, depth and coverage of the memory at a camera. */
  render(pose: Pose, k: Intrinsics, opts?: RenderViewOptions): MemoryView {
    return renderMemoryView(this.grid, pose, k, opts);
  }

  /** The visible-voxel signature of a rendered view. */
  signature(view: MemoryView): ViewSignature {
    return viewSignature(view);
  }

  /** Keeps `frame` as a keyframe; its signature is what the memory shows at its pose. */
  addKeyframe(frame: RgbdImage | undefined, pose: Pose, k: Intrinsics, view?: MemoryView): Keyframe {
    const signature = viewSignature(view ?? this.render(pose, k, { freeSpace: false }));
    return this.keyframes.add({ pose, intrinsics: k, signature, image: frame });
  }

  /** Up to K keyframes whose 3D IoU with the view at `pose` is ≥ ε, best first. */
  retrieve(pose: Pose, k: Intrinsics, opts?: RetrieveOptions, view?: MemoryView): RetrievalHit[] {
    return this.keyframes.retrieve(viewSignature(view ?? this.render(pose, k, { freeSpace: false })), opts);
  }

  stats(): MemoryStats {
    return {
      voxels: this.grid.voxelCount,
      chunks: this.grid.chunkCount,
      bytes: this.grid.byteLength,
      keyframes: this.keyframes.size,
      voxelSizeM: this.grid.voxelSizeM,
    };
  }

  /** Binary PLY of every voxel (opens in MeshLab, CloudCompare, Open3D). */
  toPly(): Uint8Array {
    return exportPly(this.grid);
  }

  /** A memory built from a PLY point cloud (keyframes empty). */
  static fromPly(bytes: Uint8Array, voxelSizeM?: number): SpatialMemory {
    return new SpatialMemory(importPly(bytes, voxelSizeM));
  }

  /** The complete state as bytes (see snapshot.ts for the layout). */
  save(): Uint8Array {
    return saveSnapshot(this.grid, this.keyframes);
  }

  static load(bytes: Uint8Array): SpatialMemory {
    const s = loadSnapshot(bytes);
    return new SpatialMemory(s.grid, s.keyframes);
  }
}
