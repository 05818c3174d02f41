import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import { renderScene } from '../../server/scene/rayCaster.ts';
import { WorldStore } from '../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../shared/camera/pose.ts';
import { K512, sceneNamed } from '../helpers/groundTruth.ts';
import { testPostgres } from '../helpers/postgres.ts';
import { type BenchResult, median, medianMs } from './harness.ts';

/** A walked courtyard at 2 cm: ~11 k chunks, 12 keyframes (what a busy world commits at first). */
function courtyard(): SpatialMemory {
  const scene = sceneNamed('courtyard');
  const memory = SpatialMemory.create(0.02);
  for (let i = 0; i < 12; i++) {
    const pose = poseFromYawPitch([i - 6, 1.7, 6 - (i % 3)], i * 0.55, -0.1);
    const f = renderScene(scene, pose, K512);
    memory.fuse(f, pose, K512);
    memory.addKeyframe(f, pose, K512);
  }
  return memory;
}

interface StoreTimes {
  commitMs: number;
  loadMs: number;
  loadNearMs: number;
  readMs: number;
}

/** The store's paths on one database: a whole world committed, loaded, brought back near a player; one small read. */
function measure(location: string, memory: SpatialMemory, runs: number): StoreTimes {
  const commits: number[] = [];
  const loads: number[] = [];
  const nears: number[] = [];
  for (let run = 0; run < runs; run++) {
    const id = `bench-${run}`;
    const store = new WorldStore(location);
    store.upsertWorld({ id, prompt: 'p', seed: 1, voxelSizeM: 0.02, createdAt: new Date().toISOString() });
    // Writer time: from the commit to its acknowledgement (the event loop spends only the encoding).
    let t0 = performance.now();
    store.commit(id, memory);
    if (!store.flushSync(120_000)) throw new Error('the store did not commit in 120 s');
    commits.push(performance.now() - t0);
    t0 = performance.now();
    const back = store.loadMemory(id, 0.02);
    loads.push(performance.now() - t0);
    store.evictFar(id, back, [[1000, 0, 1000]], 1);
    t0 = performance.now();
    store.loadNear(id, back, [0, 1.7, 6], 8);
    nears.push(performance.now() - t0);
    store.close();
  }
  const store = new WorldStore(location);
  const readMs = medianMs(() => store.listWorlds(), 200, 20);
  store.close();
  return { commitMs: median(commits), loadMs: median(loads), loadNearMs: median(nears), readMs };
}

/**
 * The world store on PostgreSQL (the clustered mode's) against SQLite (the embedded default) in the
 * same run, on the same world. Skipped where no PostgreSQL can be started.
 */
export async function benchStore({ quick }: { quick: boolean }): Promise<BenchResult[]> {
  const server = await testPostgres();
  if (!server) {
    process.stderr.write(
      'store bench skipped: PostgreSQL is not installed here (apt-get install postgresql)\n',
    );
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'spatia-store-bench-'));
  try {
    const memory = courtyard();
    const chunks = [...memory.grid.chunks()].length;
    const runs = quick ? 1 : 3;
    const sqlite = measure(join(dir, 'w.sqlite'), memory, runs);
    const postgres = measure(await server.database(), memory, runs);
    const row = (name: string, key: keyof StoreTimes, note: string): BenchResult => ({
      name,
      value: postgres[key],
      unit: 'ms',
      peerName: 'SQLite',
      peerValue: sqlite[key],
      note,
    });
    return [
      row('store.postgres.commit.world', 'commitMs', `${chunks} chunks + 12 keyframes, writer thread`),
      row('store.postgres.load.world', 'loadMs', 'whole world, blocks the event loop'),
      row('store.postgres.loadNear.8m', 'loadNearMs', 'chunks and keyframes within 8 m'),
      row('store.postgres.read.small', 'readMs', 'listWorlds: one round trip'),
    ];
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
