import { describe, expect, it } from 'vitest';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import {
  determinant,
  forwardOf,
  poseFromYawPitch,
  poseLookAt,
  validatePose,
} from '../../../shared/camera/pose.ts';
import { backProject, projectPoint } from '../../../shared/camera/projection.ts';
import { SpatiaError } from '../../../shared/errors.ts';

describe('pose conventions', () => {
  it('yaw 0 looks along world -z with +x to the right and +y up', () => {
    const p = poseFromYawPitch([0, 0, 0], 0, 0);
    expect(forwardOf(p)).toEqual([0, 0, -1].map((x) => expect.closeTo(x, 12)));
    // Columns of R: right, down, forward.
    const r = p.rotation;
    expect([r[0], r[3], r[6]]).toEqual([1, 0, 0].map((x) => expect.closeTo(x, 12)));
    expect([r[1], r[4], r[7]]).toEqual([0, -1, 0].map((x) => expect.closeTo(x, 12)));
    expect(determinant(r)).toBeCloseTo(1, 12);
  });

  it('positive yaw turns right (towards +x), positive pitch looks up', () => {
    const right = forwardOf(poseFromYawPitch([0, 0, 0], Math.PI / 2, 0));
    expect(right[0]).toBeCloseTo(1, 12);
    const up = forwardOf(poseFromYawPitch([0, 0, 0], 0, 0.5));
    expect(up[1]).toBeGreaterThan(0.4);
  });

  it('lookAt points the optical axis at the target', () => {
    const pose = poseLookAt([1, 2, 3], [4, 0, -2]);
    const k = intrinsicsFromFov(64, 48, 60);
    const { u, v, z } = projectPoint(pose, k, [4, 0, -2]);
    expect(u).toBeCloseTo(k.cx, 9);
    expect(v).toBeCloseTo(k.cy, 9);
    expect(z).toBeGreaterThan(0);
  });

  it('projection and back-projection are inverse (pixel centres at integers, depth is camera z)', () => {
    const pose = poseLookAt([0.3, 1.6, 2], [-1, 1, -3]);
    const k = intrinsicsFromFov(512, 288, 75);
    const w = backProject(pose, k, 100, 200, 3.5);
    const p = projectPoint(pose, k, w);
    expect(p.u).toBeCloseTo(100, 9);
    expect(p.v).toBeCloseTo(200, 9);
    expect(p.z).toBeCloseTo(3.5, 9);
    // A point above the optical axis in the world projects to a smaller row (y down in the image).
    const above = projectPoint(pose, k, [w[0], w[1] + 0.1, w[2]]);
    expect(above.v).toBeLessThan(200);
  });

  it('rejects NaN, non-orthonormal and reflected rotations', () => {
    const good = poseFromYawPitch([0, 0, 0], 0.3, 0.1);
    expect(() => validatePose(good)).not.toThrow();
    expect(() => validatePose({ ...good, position: [Number.NaN, 0, 0] })).toThrow(SpatiaError);
    expect(() => validatePose({ rotation: [2, 0, 0, 0, 1, 0, 0, 0, 1], position: [0, 0, 0] })).toThrow(
      /orthonormal/,
    );
    expect(() => validatePose({ rotation: [-1, 0, 0, 0, 1, 0, 0, 0, 1], position: [0, 0, 0] })).toThrow(
      /reflection/,
    );
  });

  it('rejects bad intrinsics', () => {
    expect(() => intrinsicsFromFov(0, 10, 60)).toThrow(/intrinsics/);
    expect(() => intrinsicsFromFov(10, 10, 190)).toThrow(/hfov/);
  });
});
