import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { VoxelGrid } from '../../../server/memory/voxelGrid.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import { K256, sceneNamed, shotAt } from '../../helpers/groundTruth.ts';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof SpatiaError) return e.code;
    throw e;
  }
  return 'none';
}

describe('bad input is rejected and leaves the memory unchanged', () => {
  const { pose, frame } = shotAt(sceneNamed('room'), 0, K256);
  const memory = SpatialMemory.create(0.05);
  memory.fuse(frame, pose, K256);
  const before = memory.save();
  const unchanged = () => expect(Buffer.from(memory.save()).equals(Buffer.from(before))).toBe(true);

  it('NaN, infinite and non-rotation poses', () => {
    const nanPose: Pose = { rotation: pose.rotation, position: [Number.NaN, 1, 0] };
    expect(codeOf(() => memory.fuse(frame, nanPose, K256))).toBe('INVALID_POSE');
    const badRot: Pose = { rotation: [1, 0, 0, 0, 1, 0, 0, 0, 2], position: [0, 1, 0] };
    expect(codeOf(() => memory.fuse(frame, badRot, K256))).toBe('INVALID_POSE');
    expect(
      codeOf(() =>
        memory.render({ rotation: pose.rotation, position: [0, Number.POSITIVE_INFINITY, 0] }, K256),
      ),
    ).toBe('INVALID_POSE');
    expect(codeOf(() => memory.addKeyframe(undefined, nanPose, K256))).toBe('INVALID_POSE');
    unchanged();
  });

  it('wrong buffer sizes and types', () => {
    expect(codeOf(() => memory.fuse({ ...frame, rgb: frame.rgb.subarray(0, 10) }, pose, K256))).toBe(
      'BUFFER_SIZE',
    );
    expect(codeOf(() => memory.fuse({ ...frame, depth: new Float32Array(5) }, pose, K256))).toBe(
      'BUFFER_SIZE',
    );
    expect(
      codeOf(() =>
        memory.fuse(
          { ...frame, depth: new Float64Array(frame.depth) as unknown as Float32Array },
          pose,
          K256,
        ),
      ),
    ).toBe('BUFFER_SIZE');
    expect(codeOf(() => memory.fuse(frame, pose, intrinsicsFromFov(128, 72, 75)))).toBe('BUFFER_SIZE');
    expect(codeOf(() => memory.fuse(frame, pose, K256, { excludeMask: new Uint8Array(3) }))).toBe(
      'BUFFER_SIZE',
    );
    expect(codeOf(() => memory.fuse(frame, pose, { ...K256, fx: -1 }))).toBe('INVALID_INTRINSICS');
    expect(codeOf(() => memory.fuse(frame, pose, K256, { minDepthM: 5, maxDepthM: 1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => memory.fuse(frame, { ...pose, position: [1e9, 0, 0] }, K256))).toBe('CAPACITY');
    unchanged();
  });

  it('zero, negative and non-numeric voxel sizes', () => {
    for (const vs of [0, -0.01, Number.NaN, Number.POSITIVE_INFINITY, 1e-9]) {
      expect(codeOf(() => new VoxelGrid(vs))).toBe('INVALID_VOXEL_SIZE');
    }
    expect(() => new VoxelGrid(0)).toThrow(/voxel size must be a finite number of metres/);
  });

  it('NaN depths inside a frame are skipped, not fused', () => {
    const m = SpatialMemory.create(0.05);
    const depth = frame.depth.slice();
    depth.fill(Number.NaN, 0, depth.length / 2);
    const stats = m.fuse({ ...frame, depth }, pose, K256);
    expect(stats.pixelsFused).toBeLessThan(frame.width * frame.height * 0.5 + 1);
    m.grid.forEachVoxel((v) => expect(Number.isFinite(v.x + v.y + v.z)).toBe(true));
  });
});
