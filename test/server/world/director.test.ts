import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { SceneModel } from '../../../server/models/sceneModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { Director } from '../../../server/world/director.ts';
import { closedLoopTrajectory, parseTrajectory, sampleTrajectory } from '../../../server/world/trajectory.ts';
import {
  type CameraState,
  DEFAULT_CONTROLLER,
  type InputState,
  Key,
  NO_INPUT,
} from '../../../shared/camera/controller.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

const size = { width: 256, height: 144 };

describe('director', () => {
  it('conditions on the memory, fuses generated frames, keeps keyframes and times every stage', async () => {
    const scene = sceneNamed('room');
    const memory = SpatialMemory.create(0.02);
    const director = new Director(memory, new SceneModel(scene, size));
    const k = director.intrinsics;
    const start = poseFromYawPitch([0, 1.6, 2.2], 0, -0.1);
    director.seedFrame(renderScene(scene, start, k), start);
    const before = memory.grid.voxelCount;
    expect(memory.keyframes.size).toBe(1);
    // Turn right 180° over one clip: new surfaces enter the memory, a new keyframe is kept.
    const poses = Array.from({ length: 16 }, (_, i) =>
      poseFromYawPitch([0, 1.6, 2.2], ((i + 1) * Math.PI) / 16, -0.1),
    );
    const frames = [];
    for await (const f of director.runClip(poses, { seed: 1, timeS: 0 })) frames.push(f);
    expect(frames.map((f) => f.index)).toEqual([...Array(16).keys()]);
    expect(frames.every((f) => f.clipId === 0 && f.timings.conditionMs > 0 && f.timings.updateMs > 0)).toBe(
      true,
    );
    expect(memory.grid.voxelCount).toBeGreaterThan(before * 1.5);
    expect(memory.keyframes.size).toBe(2);
    // The memory now reproduces the oracle at the clip's last pose.
    const view = memory.render(poses[15]!, k);
    expect(view.coverage.reduce((a, b) => a + b, 0) / view.coverage.length).toBeGreaterThan(0.95);
  });

  it('with memory off it neither reads nor writes the memory', async () => {
    const memory = SpatialMemory.create(0.02);
    const director = new Director(memory, new ProceduralModel(size), { memory: false });
    const poses = [poseFromYawPitch([0, 1.6, 0], 0, 0), poseFromYawPitch([0, 1.6, 0], 0.1, 0)];
    for await (const _f of director.runClip(poses, { seed: 3, timeS: 0 })) {
      /* drain */
    }
    expect(memory.grid.voxelCount).toBe(0);
    expect(memory.keyframes.size).toBe(0);
  });

  it('plans a clip with the shared controller, deterministically', () => {
    const director = new Director(SpatialMemory.create(0.02), new ProceduralModel(size));
    const state: CameraState = { position: [0, 1.6, 0], yaw: 0, pitch: 0 };
    const input: InputState = { ...NO_INPUT, keys: Key.Forward };
    const a = director.planClip(state, input, DEFAULT_CONTROLLER);
    const b = director.planClip(state, input, DEFAULT_CONTROLLER);
    expect(a.poses).toHaveLength(16);
    expect(a).toEqual(b);
    expect(a.end.position[2]).toBeLessThan(-0.05); // walked forward (-z)
  });

  it('rejects bad settings: K < 0, ε outside [0, 1], a seed frame of the wrong size', () => {
    const memory = SpatialMemory.create(0.02);
    const model = new ProceduralModel(size);
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as SpatiaError).code;
      }
      return undefined;
    };
    expect(code(() => new Director(memory, model, { k: -1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => new Director(memory, model, { k: 2.5 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => new Director(memory, model, { minIoU: 1.5 }))).toBe('INVALID_ARGUMENT');
    const d = new Director(memory, model);
    const img = { width: 10, height: 10, rgb: new Uint8Array(300), depth: new Float32Array(100) };
    expect(code(() => d.seedFrame(img, poseFromYawPitch([0, 0, 0], 0, 0)))).toBe('BUFFER_SIZE');
    expect(memory.grid.voxelCount).toBe(0);
  });
});

describe('trajectory files', () => {
  it('samples waypoints at the model rate, exactly through them', () => {
    const t = parseTrajectory({
      version: 1,
      waypoints: [
        { t: 0, position: [0, 1, 0], yawDeg: 0, pitchDeg: 0 },
        { t: 1, position: [0, 1, -3], yawDeg: 90, pitchDeg: 10 },
      ],
    });
    const poses = sampleTrajectory(t, 30);
    expect(poses).toHaveLength(31);
    expect(poses[15]!.position[2]).toBeCloseTo(-1.5, 9);
    expect(poses[30]!.position).toEqual([0, 1, -3]);
    const loop = sampleTrajectory(
      closedLoopTrajectory({ position: [1, 1.6, 2], yawDeg: 30, pitchDeg: -5 }, 2),
      30,
    );
    expect(loop[0]!.position).toEqual(loop.at(-1)!.position);
    for (let i = 0; i < 9; i++) expect(loop[0]!.rotation[i]).toBeCloseTo(loop.at(-1)!.rotation[i]!, 9);
  });

  it('rejects malformed trajectories, naming the problem', () => {
    const wp = (t: number, extra: object = {}) => ({
      t,
      position: [0, 1, 0],
      yawDeg: 0,
      pitchDeg: 0,
      ...extra,
    });
    const bad: [unknown, RegExp][] = [
      [{ version: 2, waypoints: [wp(0), wp(1)] }, /version/],
      [{ version: 1, waypoints: [wp(0)] }, /waypoints/],
      [{ version: 1, waypoints: [wp(0), wp(0)] }, /after the one before/],
      [{ version: 1, waypoints: [wp(1), wp(2)] }, /must be 0/],
      [{ version: 1, waypoints: [wp(0), wp(1, { pitchDeg: 95 })] }, /pitchDeg/],
      [{ version: 1, waypoints: [wp(0), wp(1, { position: [0, 'x', 0] })] }, /position/],
      [{ version: 1, waypoints: [wp(0), wp(1, { extra: 1 })] }, /extra|Unrecognized/i],
    ];
    for (const [json, re] of bad) {
      let err: unknown;
      try {
        parseTrajectory(json);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpatiaError);
      expect((err as SpatiaError).code).toBe('TRAJECTORY_FORMAT');
      expect((err as Error).message).toMatch(re);
    }
  });
});
