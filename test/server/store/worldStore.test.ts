import { afterAll, describe, expect, it } from 'vitest';
import { encodeKeyframe } from '../../../server/memory/snapshot.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { BinaryWriter } from '../../../shared/codec/binaryWriter.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { storeBackends } from '../../helpers/storeBackends.ts';
import { chunkBytes } from '../../helpers/storeFixtures.ts';

function courtyardMemory(): SpatialMemory {
  const scene = sceneNamed('courtyard');
  const memory = SpatialMemory.create(0.05);
  for (let i = 0; i < 4; i++) {
    const pose = poseFromYawPitch([i * 6 - 9, 1.7, 6], (i * Math.PI) / 2, -0.1);
    const f = renderScene(scene, pose, K256);
    memory.fuse(f, pose, K256);
    memory.addKeyframe(f, pose, K256);
  }
  return memory;
}

/** Every chunk's exact bytes by key, and every keyframe's, independent of load order. */
function canonical(m: SpatialMemory): { chunks: [number, string][]; keyframes: string[] } {
  const chunks = chunkBytes(m);
  const keyframes = m.keyframes.all().map((kf) => {
    const w = new BinaryWriter();
    encodeKeyframe(w, kf);
    return Buffer.from(w.finish()).toString('base64');
  });
  return { chunks, keyframes };
}

const meta = (id: string) => ({
  id,
  prompt: 'p',
  seed: 3,
  voxelSizeM: 0.05,
  createdAt: new Date().toISOString(),
});

const { backends, stop } = await storeBackends();
afterAll(stop);

describe.each(backends)('$name world store', (backend) => {
  it('commits only what changed and restores the memory exactly', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path);
    store.upsertWorld(meta('a'));
    const memory = courtyardMemory();
    const first = store.commit('a', memory);
    expect(first.chunks).toBe([...memory.grid.chunks()].filter((c) => !c.isEmpty).length);
    expect(first.keyframes).toBe(4);
    expect(store.commit('a', memory)).toEqual({ chunks: 0, keyframes: 0, bytes: 0 });
    // One more frame touches a few chunks only.
    const pose = poseFromYawPitch([0, 1.7, 6], 0.3, -0.1);
    memory.fuse(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
    const second = store.commit('a', memory);
    expect(second.chunks).toBeGreaterThan(0);
    expect(second.chunks).toBeLessThan(first.chunks);
    store.close();
    const reopened = new WorldStore(path);
    expect(reopened.getWorld('a')).toMatchObject({ prompt: 'p', seed: 3, voxelSizeM: 0.05 });
    const back = reopened.loadMemory('a', 0.05);
    expect(canonical(back)).toEqual(canonical(memory));
    expect(back.keyframes.size).toBe(4);
    reopened.close();
  });

  it('far chunks and keyframes leave RAM once committed and come back when a player approaches', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path);
    store.upsertWorld(meta('b'));
    const memory = courtyardMemory();
    const before = canonical(memory);
    const view = poseFromYawPitch([-3, 1.7, 6], Math.PI / 2, -0.1);
    const hits = (): number[] => memory.retrieve(view, K256).map((h) => h.keyframe.id);
    const retrieved = hits();
    expect(retrieved.length).toBeGreaterThan(0);
    // Nothing committed yet: nothing may leave.
    expect(store.evictFar('b', memory, [[100, 0, 100]], 5)).toEqual({ chunks: 0, keyframes: 0 });
    store.commit('b', memory);
    await store.flush();
    const evicted = store.evictFar('b', memory, [[100, 0, 100]], 5);
    expect(evicted.chunks).toBeGreaterThan(0);
    expect(evicted.keyframes).toBe(4);
    expect(memory.grid.voxelCount).toBe(0);
    expect(memory.keyframes.size).toBe(0);
    expect(hits()).toEqual([]);
    // Near one end of the walk only the keyframes taken within the radius come back.
    const first = store.loadNear('b', memory, [-9, 1.7, 6], 4);
    expect(first.keyframes).toBe(1);
    const rest = store.loadNear('b', memory, [0, 1.7, 0], 60);
    expect(rest.keyframes).toBe(3);
    expect(first.chunks + rest.chunks).toBe(evicted.chunks);
    expect(canonical(memory).chunks).toEqual(before.chunks);
    expect(canonical(memory).keyframes.sort()).toEqual([...before.keyframes].sort());
    expect(hits()).toEqual(retrieved);
    store.close();
  });

  it('loads a world near a position only, and new keyframes never reuse the ids of those left on disk', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path);
    store.upsertWorld(meta('c'));
    store.commit('c', courtyardMemory());
    store.close();
    const reopened = new WorldStore(path);
    const near = reopened.loadMemory('c', 0.05, { position: [-9, 1.7, 6], radiusM: 4 });
    expect(near.keyframes.all().map((k) => k.id)).toEqual([0]);
    expect(near.voxelCount).toBeGreaterThan(0);
    expect(near.voxelCount).toBeLessThan(reopened.loadMemory('c', 0.05).voxelCount);
    const pose = poseFromYawPitch([-9, 1.7, 3], 0, -0.1);
    const added = near.addKeyframe(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
    expect(added.id).toBe(4);
    reopened.commit('c', near);
    await reopened.flush();
    expect(reopened.loadNear('c', near, [0, 1.7, 6], 60).keyframes).toBe(3);
    expect(
      near.keyframes
        .all()
        .map((k) => k.id)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4]);
    reopened.close();
  });

  it('refuses a store it cannot open with a clear error', async () => {
    const unreachable =
      backend.name === 'SQLite'
        ? '/nonexistent-dir/x/y.sqlite'
        : (await backend.fresh()).replace(/:\d+\//, ':1/').replace('postgres@', 'postgres:secret@');
    const e = (() => {
      try {
        new WorldStore(unreachable);
      } catch (error) {
        return error as Error;
      }
    })();
    expect(e?.message).toMatch(/cannot open the world store/);
    expect(e?.message).not.toContain('secret');
  });
});
