import { describe, expect, it } from 'vitest';
import { saveSnapshot } from '../../../server/memory/snapshot.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { ThreadedModel } from '../../../server/models/threaded/threadedModel.ts';
import type { ClipRequest, GeneratedFrame, WorldModel } from '../../../server/models/worldModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { playClip, seedFromScene } from '../../../server/world/clipLoop.ts';
import { Director } from '../../../server/world/director.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import type { SpatiaError } from '../../../shared/errors.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

async function frames(model: WorldModel, req: ClipRequest): Promise<GeneratedFrame[]> {
  const out: GeneratedFrame[] = [];
  for await (const f of model.generate(req)) out.push(f);
  return out;
}

describe('procedural model in worker threads', () => {
  it('gives the same frames as on the main thread, for concurrent clips too', async () => {
    const local = new ProceduralModel({ width: 256, height: 144 });
    const threaded = new ThreadedModel('procedural', { width: 256, height: 144 }, 2);
    const k = local.intrinsics;
    const memory = SpatialMemory.create(0.02);
    const start = poseFromYawPitch([0, 1.6, 2.2], 0, -0.1);
    memory.fuse(renderScene(sceneNamed('room'), start, k), start, k);
    const request = (seed: number): ClipRequest => {
      const poses = [0, 1, 2].map((i) => poseFromYawPitch([0, 1.6, 2.2], 0.5 * i, -0.1));
      return {
        clipId: seed,
        poses,
        intrinsics: k,
        memoryViews: poses.map((p) => memory.render(p, k)),
        references: [],
        preceding: [],
        prompt: 'a room',
        seed,
        timeS: 0,
      };
    };
    const [a, b] = await Promise.all([frames(threaded, request(1)), frames(threaded, request(2))]);
    const la = await frames(local, request(1));
    const lb = await frames(local, request(2));
    for (let i = 0; i < 3; i++) {
      expect(Buffer.from(a[i]!.rgb).equals(Buffer.from(la[i]!.rgb))).toBe(true);
      expect(Buffer.from(b[i]!.rgb).equals(Buffer.from(lb[i]!.rgb))).toBe(true);
      expect(Buffer.from(a[i]!.depth!.buffer).equals(Buffer.from(la[i]!.depth!.buffer))).toBe(true);
    }
    // Errors cross the thread boundary with their code.
    const bad = await frames(threaded, { ...request(1), seed: -1 }).catch((e: unknown) => e);
    expect((bad as SpatiaError).code).toBe('INVALID_ARGUMENT');
    await threaded.dispose();
  }, 60_000);

  it('a walk through the director gives the same frames and the same memory bytes as the single-threaded path', async () => {
    const size = { width: 256, height: 144 };
    const scene = sceneNamed('courtyard');
    const walk = (i: number) => poseFromYawPitch([Math.sin(i * 0.1) * 2, 1.6, 4 - i * 0.1], i * 0.11, 0);
    // Clips of two frames, references and preceding frames included: every image kind crosses.
    const run = async (
      model: WorldModel,
    ): Promise<{ frames: Buffer[]; memory: Buffer; keyframes: number }> => {
      const memory = SpatialMemory.create(0.02);
      const director = new Director(memory, model, { prompt: 'a sunny courtyard' });
      seedFromScene(director, scene, walk(0), 0);
      const frames: Buffer[] = [];
      for (let i = 0; i < 24; i += 2)
        for await (const f of playClip(director, { poses: [walk(i), walk(i + 1)], seed: i, timeS: i / 30 }))
          frames.push(Buffer.concat([Buffer.from(f.rgb), Buffer.from(f.depth!.buffer)]));
      return {
        frames,
        memory: Buffer.from(saveSnapshot(memory.grid, memory.keyframes)),
        keyframes: memory.keyframes.size,
      };
    };
    const single = await run(new ProceduralModel(size));
    const threaded = new ThreadedModel('procedural', size, 2);
    const multi = await run(threaded);
    await threaded.dispose();
    expect(single.keyframes).toBeGreaterThan(1);
    expect(multi.frames.length).toBe(single.frames.length);
    for (let i = 0; i < single.frames.length; i++)
      expect(multi.frames[i]!.equals(single.frames[i]!)).toBe(true);
    expect(multi.memory.equals(single.memory)).toBe(true);
  }, 120_000);
});
