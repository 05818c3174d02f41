import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { ThreadedModel } from '../../../server/models/threaded/threadedModel.ts';
import type { ClipRequest, GeneratedFrame, WorldModel } from '../../../server/models/worldModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
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
});
