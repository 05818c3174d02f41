import { describe, expect, it } from 'vitest';
import {
  type CameraState,
  DEFAULT_CONTROLLER,
  type InputState,
  Key,
  maxSpeedMps,
  NO_INPUT,
  poseOfCamera,
  stepCamera,
} from '../../../shared/camera/controller.ts';
import { forwardOf } from '../../../shared/camera/pose.ts';

const start: CameraState = { position: [0, 1.6, 0], yaw: 0, pitch: 0 };
const input = (o: Partial<InputState>): InputState => ({ ...NO_INPUT, ...o });

describe('first-person camera controller', () => {
  it('W walks forward along yaw at walking speed, in the horizontal plane', () => {
    const s = stepCamera({ ...start, pitch: 0.8 }, input({ keys: Key.Forward }), 0.1);
    expect(s.position[2]).toBeCloseTo(-DEFAULT_CONTROLLER.walkSpeedMps * 0.1, 12);
    expect(s.position[1]).toBeCloseTo(1.6, 12);
    const fwd = forwardOf(poseOfCamera(start));
    expect(fwd[2]).toBeCloseTo(-1, 12);
  });

  it('D strafes right (+x at yaw 0), diagonal is no faster than straight', () => {
    const right = stepCamera(start, input({ keys: Key.Right }), 0.1);
    expect(right.position[0]).toBeGreaterThan(0);
    const diag = stepCamera(start, input({ keys: Key.Forward | Key.Right }), 0.1);
    const d = Math.hypot(diag.position[0], diag.position[2]);
    expect(d).toBeCloseTo(DEFAULT_CONTROLLER.walkSpeedMps * 0.1, 9);
  });

  it('sprint multiplies speed; speed never exceeds maxSpeedMps, even with keys and a stick together', () => {
    const s = stepCamera(
      start,
      input({ keys: Key.Forward | Key.Sprint | Key.Up | Key.Right, padMoveX: 1, padMoveY: -1 }),
      0.1,
    );
    const d = Math.hypot(s.position[0], s.position[1] - 1.6, s.position[2]);
    expect(d / 0.1).toBeLessThanOrEqual(maxSpeedMps() + 1e-9);
    expect(d / 0.1).toBeGreaterThan(DEFAULT_CONTROLLER.walkSpeedMps * 2);
  });

  it('mouse moves look; pitch is clamped; yaw wraps', () => {
    const s = stepCamera(start, input({ lookDxPx: 100, lookDyPx: -100000 }), 0.016);
    expect(s.yaw).toBeCloseTo(100 * DEFAULT_CONTROLLER.mouseRadPerPx, 12);
    expect(s.pitch).toBeCloseTo(DEFAULT_CONTROLLER.maxPitchRad, 12);
    const wrapped = stepCamera({ ...start, yaw: 3.1 }, input({ lookDxPx: 100 }), 0.016);
    expect(wrapped.yaw).toBeLessThan(0);
  });

  it('gamepad sticks have a deadzone and move/look proportionally', () => {
    expect(stepCamera(start, input({ padMoveY: -0.1, padLookX: 0.1 }), 0.1)).toEqual(start);
    const s = stepCamera(start, input({ padMoveY: -1, padLookX: 1 }), 0.1);
    expect(s.yaw).toBeCloseTo(DEFAULT_CONTROLLER.padLookRadPerS * 0.1, 9);
    expect(Math.hypot(s.position[0], s.position[2])).toBeCloseTo(0.15, 9);
  });

  it('is deterministic, clamps long steps, and ignores garbage axis values', () => {
    const seq = [
      input({ keys: Key.Forward, lookDxPx: 3 }),
      input({ keys: Key.Left, padLookY: 0.7 }),
      input({ keys: Key.Sprint | Key.Back }),
    ];
    const run = () => seq.reduce((s, i) => stepCamera(s, i, 1 / 60), start);
    expect(run()).toEqual(run());
    const long = stepCamera(start, input({ keys: Key.Forward }), 10);
    expect(-long.position[2]).toBeCloseTo(DEFAULT_CONTROLLER.walkSpeedMps * DEFAULT_CONTROLLER.maxStepS, 12);
    const junk = stepCamera(start, input({ lookDxPx: Number.NaN, padMoveX: Number.POSITIVE_INFINITY }), 0.1);
    expect(junk.position.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(junk.yaw)).toBe(true);
    expect(() => stepCamera(start, NO_INPUT, -1)).toThrow(/dtS/);
  });
});
