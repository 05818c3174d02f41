import type { Vec3 } from '../math/vec3.ts';
import type { Intrinsics } from './intrinsics.ts';
import type { Pose } from './pose.ts';

/** World point → camera frame (OpenCV axes): Xc = Rᵀ·(Xw − t). */
function worldToCamera(pose: Pose, p: Vec3): Vec3 {
  const r = pose.rotation;
  const dx = p[0] - pose.position[0];
  const dy = p[1] - pose.position[1];
  const dz = p[2] - pose.position[2];
  return [
    r[0] * dx + r[3] * dy + r[6] * dz,
    r[1] * dx + r[4] * dy + r[7] * dz,
    r[2] * dx + r[5] * dy + r[8] * dz,
  ];
}

/** Camera point → world frame: Xw = R·Xc + t. */
function cameraToWorld(pose: Pose, c: Vec3): Vec3 {
  const r = pose.rotation;
  const t = pose.position;
  return [
    r[0] * c[0] + r[1] * c[1] + r[2] * c[2] + t[0],
    r[3] * c[0] + r[4] * c[1] + r[5] * c[2] + t[1],
    r[6] * c[0] + r[7] * c[1] + r[8] * c[2] + t[2],
  ];
}

/** Projects a world point to pixel coordinates (u, v) and its camera depth z (metres). z ≤ 0 is behind. */
export function projectPoint(pose: Pose, k: Intrinsics, p: Vec3): { u: number; v: number; z: number } {
  const c = worldToCamera(pose, p);
  return { u: (k.fx * c[0]) / c[2] + k.cx, v: (k.fy * c[1]) / c[2] + k.cy, z: c[2] };
}

/** Back-projects pixel (u, v) at camera depth z (metres) to a world point. */
export function backProject(pose: Pose, k: Intrinsics, u: number, v: number, z: number): Vec3 {
  return cameraToWorld(pose, [((u - k.cx) / k.fx) * z, ((v - k.cy) / k.fy) * z, z]);
}
