import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { type StoreBackend, storeBackends } from '../../helpers/storeBackends.ts';
import { storeError, testWorld } from '../../helpers/storeFixtures.ts';

const WORLDS = ['healthy', 'chunk-random', 'keyframe-cut', 'keyframe-short', 'voxel-zero', 'chunk-moved'];

/** A store holding the same small world under every id in WORLDS. */
async function storeWithWorlds(backend: StoreBackend): Promise<string> {
  const path = await backend.fresh();
  const store = new WorldStore(path);
  const scene = sceneNamed('courtyard');
  for (const id of WORLDS) {
    store.upsertWorld(testWorld(id));
    const memory = SpatialMemory.create(0.05);
    for (let i = 0; i < 2; i++) {
      const pose = poseFromYawPitch([i * 6 - 3, 1.7, 6], i * 1.5, -0.1);
      const f = renderScene(scene, pose, K256);
      memory.fuse(f, pose, K256);
      memory.addKeyframe(f, pose, K256);
    }
    store.commit(id, memory);
  }
  store.close();
  return path;
}

/** Damages one row per world, past the store, with the SQL both databases take. */
async function damage(backend: StoreBackend, path: string): Promise<void> {
  type Row = { key: number; data: Uint8Array };
  const chunks = (world: string) =>
    backend.raw<Row>(
      path,
      'SELECT chunk_key AS key, data FROM chunks WHERE world_id = ? ORDER BY chunk_key',
      world,
    );
  const keyframes = (world: string) =>
    backend.raw<Row>(path, 'SELECT id AS key, data FROM keyframes WHERE world_id = ? ORDER BY id', world);
  const setChunk = (world: string, key: number, data: Uint8Array) =>
    backend.raw(path, 'UPDATE chunks SET data = ? WHERE world_id = ? AND chunk_key = ?', data, world, key);
  const setKeyframe = (world: string, key: number, data: Uint8Array) =>
    backend.raw(path, 'UPDATE keyframes SET data = ? WHERE world_id = ? AND id = ?', data, world, key);
  // One chunk's blob replaced by random bytes of the same length.
  const [random] = await chunks('chunk-random');
  await setChunk('chunk-random', Number(random!.key), randomBytes(random!.data.byteLength));
  // One keyframe's compressed blob cut in half (the deflate stream ends early).
  const [cut] = await keyframes('keyframe-cut');
  await setKeyframe('keyframe-cut', Number(cut!.key), cut!.data.subarray(0, cut!.data.byteLength >> 1));
  // One keyframe whose content is truncated but compressed validly.
  const [short] = await keyframes('keyframe-short');
  const raw = inflateRawSync(short!.data);
  await setKeyframe('keyframe-short', Number(short!.key), deflateRawSync(raw.subarray(0, raw.length - 1000)));
  await backend.raw(path, "UPDATE worlds SET voxel_size = 0 WHERE id = 'voxel-zero'");
  // A chunk row whose data is another chunk's (coordinates disagree with the row).
  const [a, b] = await chunks('chunk-moved');
  await setChunk('chunk-moved', Number(a!.key), b!.data);
}

const load = (store: WorldStore, id: string): SpatialMemory => {
  const meta = store.getWorld(id)!;
  return store.loadMemory(id, meta.voxelSizeM);
};

const { backends, stop } = await storeBackends();
afterAll(stop);

describe.each(backends)(
  'a damaged row refuses its world with STORE, naming it, and leaves the others loadable ($name)',
  (backend) => {
    let path: string;
    beforeAll(async () => {
      path = await storeWithWorlds(backend);
      await damage(backend, path);
    });

    it('a chunk of random bytes', () => {
      const store = new WorldStore(path);
      const e = storeError(() => load(store, 'chunk-random'));
      expect(e.message).toMatch(
        /world "chunk-random" is damaged in the store .*: chunk \(-?\d+, -?\d+, -?\d+\) cannot be read/,
      );
      expect(load(store, 'healthy').voxelCount).toBeGreaterThan(10_000);
      store.close();
    });

    it('a chunk holding another chunk', () => {
      const store = new WorldStore(path);
      const e = storeError(() => load(store, 'chunk-moved'));
      expect(e.message).toMatch(
        /world "chunk-moved" is damaged .*: chunk .*cannot be read \(its data holds chunk/,
      );
      store.close();
    });

    it('a truncated keyframe (cut compressed stream, and short content)', () => {
      const store = new WorldStore(path);
      expect(storeError(() => load(store, 'keyframe-cut')).message).toMatch(
        /world "keyframe-cut" is damaged .*: keyframe \d+ cannot be read/,
      );
      expect(storeError(() => load(store, 'keyframe-short')).message).toMatch(
        /world "keyframe-short" is damaged .*: keyframe \d+ cannot be read/,
      );
      store.close();
    });

    it('voxel_size = 0', () => {
      const store = new WorldStore(path);
      expect(storeError(() => store.getWorld('voxel-zero')).message).toMatch(
        /world "voxel-zero" is damaged .*voxel size is 0/,
      );
      expect(storeError(() => store.loadMemory('voxel-zero', 0)).message).toMatch(/world "voxel-zero"/);
      expect(store.getWorld('healthy')?.voxelSizeM).toBe(0.05);
      store.close();
    });

    it('a damaged chunk coming back near a player (loadNear)', async () => {
      const p = await storeWithWorlds(backend);
      const store = new WorldStore(p);
      const memory = load(store, 'chunk-random');
      const total = memory.voxelCount;
      expect(store.evictFar('chunk-random', memory, [[1000, 0, 1000]], 5).chunks).toBeGreaterThan(0);
      expect(memory.voxelCount).toBe(0);
      store.close();
      await damage(backend, p);
      const again = new WorldStore(p);
      const e = storeError(() => again.loadNear('chunk-random', memory, [0, 1.7, 0], 60));
      expect(e.message).toMatch(/world "chunk-random" is damaged .*chunk/);
      // Every undamaged chunk still came back.
      expect(memory.voxelCount).toBeGreaterThan(0);
      expect(memory.voxelCount).toBeLessThan(total);
      again.close();
    });
  },
);
