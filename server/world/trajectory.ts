import { z } from 'zod';
import { type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';

/**
 * A camera path as timed waypoints (docs/formats.md#trajectory). Poses between waypoints are
 * linear in position, yaw and pitch; yaw is taken as written (0 → 360 is a full turn to the right).
 */
export interface Trajectory {
  readonly version: 1;
  readonly name?: string | undefined;
  readonly waypoints: readonly Waypoint[];
}

interface Waypoint {
  /** Seconds from the start; strictly increasing, the first is 0. */
  readonly t: number;
  readonly position: Vec3;
  readonly yawDeg: number;
  readonly pitchDeg: number;
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const waypointSchema = z.strictObject({
  t: finite.refine((t) => t >= 0 && t <= 86_400, 'must be in [0, 86400] seconds'),
  position: z.tuple([finite, finite, finite]),
  yawDeg: finite,
  pitchDeg: finite.refine((p) => Math.abs(p) <= 89, 'must be within ±89°'),
});
const trajectorySchema = z.strictObject({
  version: z.literal(1),
  name: z.string().max(200).optional(),
  waypoints: z.array(waypointSchema).min(2).max(100_000),
});

/** Validates an untrusted JSON value as a trajectory; errors name the offending path. */
export function parseTrajectory(json: unknown): Trajectory {
  const r = trajectorySchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new SpatiaError('TRAJECTORY_FORMAT', `invalid trajectory: ${issues.join('; ')}`);
  }
  const w = r.data.waypoints;
  if (w[0]!.t !== 0)
    throw new SpatiaError('TRAJECTORY_FORMAT', 'invalid trajectory: waypoints.0.t must be 0');
  for (let i = 1; i < w.length; i++) {
    if (!(w[i]!.t > w[i - 1]!.t))
      throw new SpatiaError(
        'TRAJECTORY_FORMAT',
        `invalid trajectory: waypoints.${i}.t must be after the one before`,
      );
  }
  return r.data as Trajectory;
}

/** Duration in seconds. */
const trajectoryDuration = (t: Trajectory): number => t.waypoints.at(-1)!.t;

/** One pose every 1/fps seconds from t = 0 to the last waypoint (inclusive, rounded to a frame). */
export function sampleTrajectory(traj: Trajectory, fps: number): Pose[] {
  const w = traj.waypoints;
  const frames = Math.round(trajectoryDuration(traj) * fps) + 1;
  const poses: Pose[] = [];
  let seg = 0;
  for (let f = 0; f < frames; f++) {
    const t = Math.min(f / fps, trajectoryDuration(traj));
    while (seg < w.length - 2 && w[seg + 1]!.t < t) seg++;
    const a = w[seg]!;
    const b = w[seg + 1]!;
    const u = Math.min(1, Math.max(0, (t - a.t) / (b.t - a.t)));
    const lerp = (x: number, y: number): number => x + (y - x) * u;
    poses.push(
      poseFromYawPitch(
        [
          lerp(a.position[0], b.position[0]),
          lerp(a.position[1], b.position[1]),
          lerp(a.position[2], b.position[2]),
        ],
        (lerp(a.yawDeg, b.yawDeg) * Math.PI) / 180,
        (lerp(a.pitchDeg, b.pitchDeg) * Math.PI) / 180,
      ),
    );
  }
  return poses;
}

/**
 * The eval's closed loop: starting at `start`, the camera walks a circle of `radiusM` while turning
 * a full 360° to look outward (it sees everything around it and ends exactly where it began).
 */
export function closedLoopTrajectory(
  start: { position: Vec3; yawDeg: number; pitchDeg: number },
  durationS: number,
  radiusM = 0.5,
  steps = 32,
): Trajectory {
  const y0 = (start.yawDeg * Math.PI) / 180;
  // Circle centre sits behind the start so that at θ = 0 the camera is at the start looking forward.
  const cx = start.position[0] - radiusM * Math.sin(y0);
  const cz = start.position[2] + radiusM * Math.cos(y0);
  const waypoints: Waypoint[] = [];
  for (let i = 0; i <= steps; i++) {
    const yaw = y0 + (2 * Math.PI * i) / steps;
    const onCircle = i === 0 || i === steps;
    waypoints.push({
      t: (durationS * i) / steps,
      position: onCircle
        ? start.position
        : [cx + radiusM * Math.sin(yaw), start.position[1], cz - radiusM * Math.cos(yaw)],
      yawDeg: start.yawDeg + (360 * i) / steps,
      pitchDeg: start.pitchDeg,
    });
  }
  return { version: 1, name: 'closed-loop', waypoints };
}
