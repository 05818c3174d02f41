import { check } from '../errors.ts';
import type { Vec3 } from '../math/vec3.ts';
import { type Pose, poseFromYawPitch } from './pose.ts';

/** Bits of `InputState.keys`. */
export const Key = {
  Forward: 1,
  Back: 2,
  Left: 4,
  Right: 8,
  Up: 16,
  Down: 32,
  Sprint: 64,
} as const;
const ALL_KEYS_MASK = 127;

/** One sample of the player's input; the client sends one per animation frame. */
export interface InputState {
  /** Bitmask of `Key` values held down. */
  readonly keys: number;
  /** Mouse movement since the previous sample, in pixels (+x right, +y down). */
  readonly lookDxPx: number;
  readonly lookDyPx: number;
  /** Gamepad sticks in [-1, 1]: left stick moves (y up is −1), right stick looks. */
  readonly padMoveX: number;
  readonly padMoveY: number;
  readonly padLookX: number;
  readonly padLookY: number;
}

export const NO_INPUT: InputState = {
  keys: 0,
  lookDxPx: 0,
  lookDyPx: 0,
  padMoveX: 0,
  padMoveY: 0,
  padLookX: 0,
  padLookY: 0,
};

/** Where the player is and where they look (see pose.ts for the yaw/pitch frame). */
export interface CameraState {
  readonly position: Vec3;
  readonly yaw: number;
  readonly pitch: number;
}

export interface ControllerConfig {
  readonly walkSpeedMps: number;
  readonly sprintMultiplier: number;
  readonly verticalSpeedMps: number;
  readonly mouseRadPerPx: number;
  readonly padLookRadPerS: number;
  readonly padDeadzone: number;
  readonly maxPitchRad: number;
  /** Longer steps are clamped so a stalled tab cannot teleport the player. */
  readonly maxStepS: number;
}

export const DEFAULT_CONTROLLER: ControllerConfig = {
  walkSpeedMps: 1.5,
  sprintMultiplier: 2.5,
  verticalSpeedMps: 1.0,
  mouseRadPerPx: 0.0025,
  padLookRadPerS: 2.2,
  padDeadzone: 0.15,
  maxPitchRad: (85 * Math.PI) / 180,
  maxStepS: 0.1,
};

/** The highest speed the controller can ever produce, m/s (used to bound path prediction). */
export function maxSpeedMps(cfg: ControllerConfig = DEFAULT_CONTROLLER): number {
  return Math.hypot(cfg.walkSpeedMps * cfg.sprintMultiplier, cfg.verticalSpeedMps);
}

/** Radial deadzone, rescaled so the response starts at 0 just outside it and never exceeds 1. */
function deadzone(x: number, y: number, dz: number): [number, number] {
  const m = Math.hypot(x, y);
  if (m <= dz) return [0, 0];
  const k = Math.min(1, (m - dz) / (1 - dz)) / m;
  return [x * k, y * k];
}

const clamp1 = (x: number): number => (Number.isFinite(x) ? Math.max(-1, Math.min(1, x)) : 0);
const finiteOr0 = (x: number): number => (Number.isFinite(x) ? x : 0);

/**
 * Advances the first-person camera by `dtS` seconds of `input`. Pure and deterministic: the
 * client predicts with it, the server runs the same function authoritatively. Walks in the
 * horizontal plane along yaw (pitch does not change walking height), diagonal input is no faster
 * than straight, and the speed never exceeds `maxSpeedMps(cfg)`.
 */
export function stepCamera(
  state: CameraState,
  input: InputState,
  dtS: number,
  cfg: ControllerConfig = DEFAULT_CONTROLLER,
): CameraState {
  check(Number.isFinite(dtS) && dtS >= 0, 'INVALID_ARGUMENT', `dtS must be finite and ≥ 0, got ${dtS}`);
  const dt = Math.min(dtS, cfg.maxStepS);
  const keys = input.keys & ALL_KEYS_MASK;

  const [lookX, lookY] = deadzone(clamp1(input.padLookX), clamp1(input.padLookY), cfg.padDeadzone);
  let yaw = state.yaw + finiteOr0(input.lookDxPx) * cfg.mouseRadPerPx + lookX * cfg.padLookRadPerS * dt;
  let pitch = state.pitch - finiteOr0(input.lookDyPx) * cfg.mouseRadPerPx - lookY * cfg.padLookRadPerS * dt;
  yaw = Math.atan2(Math.sin(yaw), Math.cos(yaw));
  pitch = Math.max(-cfg.maxPitchRad, Math.min(cfg.maxPitchRad, pitch));

  const [padX, padY] = deadzone(clamp1(input.padMoveX), clamp1(input.padMoveY), cfg.padDeadzone);
  let fwd = (keys & Key.Forward ? 1 : 0) - (keys & Key.Back ? 1 : 0) - padY;
  let strafe = (keys & Key.Right ? 1 : 0) - (keys & Key.Left ? 1 : 0) + padX;
  const m = Math.hypot(fwd, strafe);
  if (m > 1) {
    fwd /= m;
    strafe /= m;
  }
  const speed = cfg.walkSpeedMps * (keys & Key.Sprint ? cfg.sprintMultiplier : 1);
  const vertical = ((keys & Key.Up ? 1 : 0) - (keys & Key.Down ? 1 : 0)) * cfg.verticalSpeedMps;
  // Walking direction uses the new yaw so turning and walking in one step agree on both sides.
  const sy = Math.sin(yaw);
  const cy = Math.cos(yaw);
  const p = state.position;
  const position: Vec3 = [
    p[0] + (sy * fwd + cy * strafe) * speed * dt,
    p[1] + vertical * dt,
    p[2] + (-cy * fwd + sy * strafe) * speed * dt,
  ];
  return { position, yaw, pitch };
}

/** The camera-to-world pose of a controller state. */
export const poseOfCamera = (s: CameraState): Pose => poseFromYawPitch(s.position, s.yaw, s.pitch);
