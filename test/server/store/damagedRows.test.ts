import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { storeError, testWorld } from '../../helpers/storeFixtures.ts';

const WORLDS = ['healthy', 'chunk-random', 'keyframe-cut', 'keyframe-short', 'voxel-zero', 'chunk-moved'];

/** A store holding the same small world under every id in WORLDS. */
function storeWithWorlds(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'spatia-damage-')), 'w.sqlite');
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

function damage(path: string): void {
  const db = new Database(path);
  const first = (table: string, world: string): number =>
    (
      db.prepare(`SELECT rowid FROM ${table} WHERE world_id = ? ORDER BY rowid LIMIT 1`).get(world) as {
        rowid: number;
      }
    ).rowid;
  // One chunk's blob replaced by random bytes of the same length.
  db.prepare('UPDATE chunks SET data = randomblob(length(data)) WHERE rowid = ?').run(
    first('chunks', 'chunk-random'),
  );
  // One keyframe's compressed blob cut in half (the deflate stream ends early).
  db.prepare('UPDATE keyframes SET data = substr(data, 1, length(data) / 2) WHERE rowid = ?').run(
    first('keyframes', 'keyframe-cut'),
  );
  // One keyframe whose content is truncated but compressed validly.
  const row = db
    .prepare("SELECT rowid, data FROM keyframes WHERE world_id = 'keyframe-short' LIMIT 1")
    .get() as {
    rowid: number;
    data: Buffer;
  };
  const raw = inflateRawSync(row.data);
  db.prepare('UPDATE keyframes SET data = ? WHERE rowid = ?').run(
    deflateRawSync(raw.subarray(0, raw.length - 1000)),
    row.rowid,
  );
  db.prepare("UPDATE worlds SET voxel_size = 0 WHERE id = 'voxel-zero'").run();
  // A chunk row whose data is another chunk's (coordinates disagree with the row).
  const [a, b] = db
    .prepare("SELECT rowid, data FROM chunks WHERE world_id = 'chunk-moved' LIMIT 2")
    .all() as {
    rowid: number;
    data: Buffer;
  }[];
  db.prepare('UPDATE chunks SET data = ? WHERE rowid = ?').run(b!.data, a!.rowid);
  db.close();
}

const load = (store: WorldStore, id: string): SpatialMemory => {
  const meta = store.getWorld(id)!;
  return store.loadMemory(id, meta.voxelSizeM);
};

describe('a damaged row refuses its world with STORE, naming it, and leaves the others loadable', () => {
  const path = storeWithWorlds();
  damage(path);

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

  it('a damaged chunk coming back near a player (loadNear)', () => {
    const p = storeWithWorlds();
    const store = new WorldStore(p);
    const memory = load(store, 'chunk-random');
    const total = memory.voxelCount;
    expect(store.evictFar('chunk-random', memory, [[1000, 0, 1000]], 5).chunks).toBeGreaterThan(0);
    expect(memory.voxelCount).toBe(0);
    store.close();
    damage(p);
    const again = new WorldStore(p);
    const e = storeError(() => again.loadNear('chunk-random', memory, [0, 1.7, 0], 60));
    expect(e.message).toMatch(/world "chunk-random" is damaged .*chunk/);
    // Every undamaged chunk still came back.
    expect(memory.voxelCount).toBeGreaterThan(0);
    expect(memory.voxelCount).toBeLessThan(total);
    again.close();
  });
});
