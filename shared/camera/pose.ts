/**
 * The coordinate conventions of Spatia, written down once.
 *
 * - World: right-handed, +y up, metres.
 * - Camera: OpenCV axes: +x right, +y down, +z forward (the optical axis).
 * - Pose: camera-to-world. A camera point Xc maps to the world as Xw = R·Xc + t, so the
 *   columns of R are the camera's right, down and forward axes in world coordinates and t is
 *   the camera centre.
 * - Intrinsics: fx, fy, cx, cy in pixels; the centre of pixel (col, row) is at (u, v) = (col, row)
 *   (OpenCV), so an image of width W has its principal point at cx = (W - 1) / 2 when centred.
 * - Depth: metric z in the camera frame (distance along the optical axis, not along the ray);
 *   0 means "no surface" (sky, out of range, or not covered).
 * - Images: row-major, top-left origin; RGB is 3 bytes per pixel, depth is Float32 metres.
 * - Yaw/pitch (the camera controller): yaw 0 looks along world -z, positive yaw turns right
 *   (towards +x); positive pitch looks up.
 *
 * Babylon.js is left-handed (+z forward, +y up); the client converts at exactly one boundary.
 */

import { check } from '../errors.ts';
import { cross, normalize, type Vec3 } from '../math/vec3.ts';

/** Row-major 3×3 matrix. */
export type Mat3 = readonly [number, number, number, number, number, number, number, number, number];

/** Camera-to-world pose, OpenCV camera axes (conventions above): Xw = rotation·Xc + position. */
export interface Pose {
  readonly rotation: Mat3;
  readonly position: Vec3;
}

/**
 * Pose of a camera at `position` looking along yaw/pitch (radians; yaw 0 = world -z, positive
 * yaw turns right, positive pitch looks up). No roll.
 */
export function poseFromYawPitch(position: Vec3, yaw: number, pitch: number): Pose {
  const cp = Math.cos(pitch);
  const forward: Vec3 = [Math.sin(yaw) * cp, Math.sin(pitch), -Math.cos(yaw) * cp];
  const right: Vec3 = [Math.cos(yaw), 0, Math.sin(yaw)];
  const down = cross(forward, right);
  return { rotation: fromColumns(right, down, forward), position };
}

/** Pose of a camera at `eye` looking at `target`, with world +y as up (no roll). */
export function poseLookAt(eye: Vec3, target: Vec3): Pose {
  const f = normalize([target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]]);
  const yaw = Math.atan2(f[0], -f[2]);
  const pitch = Math.asin(Math.max(-1, Math.min(1, f[1])));
  return poseFromYawPitch(eye, yaw, pitch);
}

function fromColumns(x: Vec3, y: Vec3, z: Vec3): Mat3 {
  return [x[0], y[0], z[0], x[1], y[1], z[1], x[2], y[2], z[2]];
}

/** Throws INVALID_POSE unless the pose is finite and its rotation orthonormal with det +1. */
export function validatePose(pose: Pose, what = 'pose'): void {
  const r = pose.rotation;
  const p = pose.position;
  check(
    Array.isArray(r) && r.length === 9 && Array.isArray(p) && p.length === 3,
    'INVALID_POSE',
    `${what} needs rotation[9] and position[3]`,
  );
  check(
    r.every(Number.isFinite) && p.every(Number.isFinite),
    'INVALID_POSE',
    `${what} has a non-finite value (NaN or Infinity)`,
  );
  // R·Rᵀ = I within tolerance and det = +1: a proper rotation, so the camera frame stays right-handed.
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const d = r[i * 3]! * r[j * 3]! + r[i * 3 + 1]! * r[j * 3 + 1]! + r[i * 3 + 2]! * r[j * 3 + 2]!;
      check(Math.abs(d - (i === j ? 1 : 0)) < 1e-4, 'INVALID_POSE', `${what} rotation is not orthonormal`);
    }
  }
  check(determinant(r) > 0, 'INVALID_POSE', `${what} rotation is a reflection (det < 0)`);
}

export function determinant(m: Mat3): number {
  return (
    m[0] * (m[4] * m[8] - m[5] * m[7]) -
    m[1] * (m[3] * m[8] - m[5] * m[6]) +
    m[2] * (m[3] * m[7] - m[4] * m[6])
  );
}

/** The camera's forward (optical) axis in world coordinates. */
export const forwardOf = (pose: Pose): Vec3 => [pose.rotation[2], pose.rotation[5], pose.rotation[8]];

/**
 * How far from orthonormal (the largest entry of |RᵀR − I|) a captured rotation may be and still
 * be repaired by `orthonormalized`: real datasets store rotations rounded (TUM's quaternions to 4
 * decimals leave ~4e-4), which `validatePose`'s 1e-4 refuses; beyond 1e-2 the input is broken.
 */
export const ROTATION_REPAIR_TOLERANCE = 1e-2;

/** `a·b` for row-major 3×3 matrices. */
export function multiplyMat3(a: Mat3, b: Mat3): Mat3 {
  const out: number[] = [];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      out.push(a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!);
  return out as unknown as Mat3;
}

/**
 * A proper rotation close to `m` (row-major 3×3; Gram–Schmidt on its columns, which for the
 * rounding errors it accepts is within ~1e-7 of the nearest rotation). Throws INVALID_POSE when `m`
 * is further than `tolerance` from orthonormal, is a reflection, or is not finite.
 */
export function orthonormalized(
  m: readonly number[],
  what = 'rotation',
  tolerance = ROTATION_REPAIR_TOLERANCE,
): Mat3 {
  check(m.length === 9 && m.every(Number.isFinite), 'INVALID_POSE', `${what} needs 9 finite numbers`);
  let worst = 0;
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      const d = m[i]! * m[j]! + m[3 + i]! * m[3 + j]! + m[6 + i]! * m[6 + j]!;
      worst = Math.max(worst, Math.abs(d - (i === j ? 1 : 0)));
    }
  check(
    worst <= tolerance,
    'INVALID_POSE',
    `${what} is ${worst.toExponential(1)} from orthonormal (at most ${tolerance} is repaired)`,
  );
  const x = normalize([m[0]!, m[3]!, m[6]!]);
  const c1: Vec3 = [m[1]!, m[4]!, m[7]!];
  const dot = x[0] * c1[0] + x[1] * c1[1] + x[2] * c1[2];
  const y = normalize([c1[0] - dot * x[0], c1[1] - dot * x[1], c1[2] - dot * x[2]]);
  const z = cross(x, y);
  check(z[0] * m[2]! + z[1] * m[5]! + z[2] * m[8]! > 0, 'INVALID_POSE', `${what} is a reflection (det < 0)`);
  return fromColumns(x, y, z);
}

/** The rotation of a unit quaternion (x, y, z, w), normalised first (datasets round them). */
export function rotationFromQuaternion(
  qx: number,
  qy: number,
  qz: number,
  qw: number,
  what = 'quaternion',
): Mat3 {
  const n = Math.hypot(qx, qy, qz, qw);
  check(
    Number.isFinite(n) && Math.abs(n - 1) <= ROTATION_REPAIR_TOLERANCE,
    'INVALID_POSE',
    `${what} has norm ${n}, not 1`,
  );
  const [x, y, z, w] = [qx / n, qy / n, qz / n, qw / n];
  return [
    1 - 2 * (y * y + z * z),
    2 * (x * y - z * w),
    2 * (x * z + y * w),
    2 * (x * y + z * w),
    1 - 2 * (x * x + z * z),
    2 * (y * z - x * w),
    2 * (x * z - y * w),
    2 * (y * z + x * w),
    1 - 2 * (x * x + y * y),
  ];
}
