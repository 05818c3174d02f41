import { afterAll, describe, expect, it } from 'vitest';
import type { RetrievalHit } from '../../../server/memory/keyframes.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { type Pose, poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { crc32 } from '../../../shared/codec/crc32.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { storeBackends } from '../../helpers/storeBackends.ts';
import { testWorld } from '../../helpers/storeFixtures.ts';

const scene = sceneNamed('courtyard');
/** One keyframe image at K256: RGB + float depth. */
const IMAGE_BYTES = K256.width * K256.height * 7;

/** A walk across the courtyard, turning: a new keyframe every step (as an exploring player makes). */
function walkPoses(n: number): Pose[] {
  return Array.from({ length: n }, (_, i) =>
    poseFromYawPitch([-9 + (i % 10) * 2, 1.7, 8 - Math.floor(i / 10) * 4], i * 0.7, -0.1),
  );
}

function step(memory: SpatialMemory, pose: Pose): void {
  const f = renderScene(scene, pose, K256);
  memory.fuse(f, pose, K256);
  memory.addKeyframe(f, pose, K256);
}

const imageCrc = (h: RetrievalHit): number => {
  const im = h.keyframe.image!;
  return crc32(im.rgb, crc32(new Uint8Array(im.depth.buffer, im.depth.byteOffset, im.depth.byteLength)));
};

/** Retrieval at many poses as (id, iou, image CRC) triples. */
function retrievals(memory: SpatialMemory, poses: readonly Pose[]): [number, number, number][][] {
  return poses.map((p) =>
    memory.retrieve(p, K256, { k: 7, minIoU: 0.05 }).map((h) => [h.keyframe.id, h.iou, imageCrc(h)]),
  );
}

const { backends, stop } = await storeBackends();
afterAll(stop);

describe.each(backends)('keyframe images in RAM are bounded by a budget per world ($name)', (backend) => {
  it('keeps pose and signature of every keyframe, at most the budget of committed images, and retrieves exactly as without a store', async () => {
    const path = await backend.fresh();
    const budget = 6 * IMAGE_BYTES;
    const store = new WorldStore(path, { keyframeRamBytes: budget });
    store.upsertWorld({
      id: 'walk',
      prompt: 'p',
      seed: 1,
      voxelSizeM: 0.05,
      createdAt: new Date().toISOString(),
    });
    const memory = SpatialMemory.create(0.05);
    const twin = SpatialMemory.create(0.05); // no store: the eval's case, nothing leaves RAM
    const poses = walkPoses(40);
    for (let i = 0; i < poses.length; i++) {
      step(memory, poses[i]!);
      step(twin, poses[i]!);
      if (i % 5 === 4) store.commit('walk', memory);
    }
    expect(twin.keyframes.imageBytes).toBe(40 * IMAGE_BYTES);
    expect(store.flushSync()).toBe(true);
    store.commit('walk', memory); // handles the acknowledgements
    expect(memory.keyframes.size).toBe(40);
    expect(memory.keyframes.imageBytes).toBeLessThanOrEqual(budget);
    expect(memory.keyframes.residentImages).toBe(6);

    // Images added and not yet committed stay, whatever the budget.
    const more = walkPoses(50).slice(40);
    for (const p of more) {
      step(memory, p);
      step(twin, p);
    }
    expect(memory.keyframes.imageBytes).toBe(budget + 10 * IMAGE_BYTES);

    // Retrieval returns the same keyframes, scores and images (evicted ones come back from the store).
    const queries = walkPoses(50).map((p, i) =>
      poseFromYawPitch([p.position[0] + 0.3, 1.7, p.position[2] - 0.2], i * 0.7 + 0.15, -0.1),
    );
    const withStore = retrievals(memory, queries);
    expect(withStore).toEqual(retrievals(twin, queries));
    expect(withStore.flat().length).toBeGreaterThan(100);
    // The snapshot (recordings, replay) is unchanged too.
    expect(Buffer.from(memory.save()).equals(Buffer.from(twin.save()))).toBe(true);

    store.commit('walk', memory);
    expect(store.flushSync()).toBe(true);
    store.commit('walk', memory);
    expect(memory.keyframes.imageBytes).toBeLessThanOrEqual(budget);
    store.close();

    // A world loaded from the store keeps only the budget of images too, and retrieves the same.
    const reopened = new WorldStore(path, { keyframeRamBytes: budget });
    const back = reopened.loadMemory('walk', 0.05);
    expect(back.keyframes.size).toBe(50);
    expect(back.keyframes.imageBytes).toBeLessThanOrEqual(budget);
    expect(retrievals(back, queries)).toEqual(withStore);
    expect(back.keyframes.imageBytes).toBeLessThanOrEqual(budget);
    reopened.close();
  });

  it('keeps every image when the budget is unlimited or there is no store', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path, { keyframeRamBytes: Number.POSITIVE_INFINITY });
    store.upsertWorld(testWorld());
    const memory = SpatialMemory.create(0.05);
    for (const p of walkPoses(8)) step(memory, p);
    store.commit('w', memory);
    store.flushSync();
    store.commit('w', memory);
    expect(memory.keyframes.imageBytes).toBe(8 * IMAGE_BYTES);
    store.close();
  });
});
