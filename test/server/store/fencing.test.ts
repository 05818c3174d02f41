import { afterAll, describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { storeBackends } from '../../helpers/storeBackends.ts';
import { testWorld } from '../../helpers/storeFixtures.ts';

/** A memory holding one view of the courtyard from `x`. */
function viewFrom(x: number): SpatialMemory {
  const memory = SpatialMemory.create(0.05);
  const pose = poseFromYawPitch([x, 1.7, 6], 0, -0.1);
  memory.fuse(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
  return memory;
}

const { backends, stop } = await storeBackends();
afterAll(stop);

describe.each(backends)('fenced commits (clustered nodes on one $name store)', (backend) => {
  it('refuses a commit whose lease epoch is older than the last commit’s, whole, and tells its node; the store stays healthy', async () => {
    const path = await backend.fresh();
    const stale = new WorldStore(path); // the node that lost the world (lease epoch 1)
    const owner = new WorldStore(path); // the node that took it over (epoch 2)
    const fenced: string[] = [];
    stale.onFenced = (id) => fenced.push(id);
    try {
      stale.upsertWorld(testWorld('w'));
      stale.commit('w', viewFrom(0), [], 1);
      await stale.flush();
      const taken = viewFrom(-3);
      owner.commit('w', taken, [], 2);
      await owner.flush();
      const ownersVoxels = owner.loadMemory('w', 0.05).voxelCount;
      // The old owner's writer still held a commit from before it noticed: refused.
      stale.commit('w', viewFrom(3), [], 1);
      await stale.flush();
      expect(fenced).toEqual(['w']);
      expect(owner.loadMemory('w', 0.05).voxelCount).toBe(ownersVoxels);
      expect(stale.health().ok).toBe(true);
      // The owner goes on committing; a commit without an epoch (one process) is never fenced.
      owner.commit('w', viewFrom(6), [], 2);
      await owner.flush();
      expect(owner.loadMemory('w', 0.05).voxelCount).toBeGreaterThan(ownersVoxels);
      owner.commit('w', viewFrom(9));
      await owner.flush();
      expect(fenced).toEqual(['w']);
    } finally {
      stale.close();
      owner.close();
    }
  });
});
