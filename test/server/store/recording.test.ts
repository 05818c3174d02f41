import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import type { SessionStart } from '../../../server/store/sessionLog.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { frameChecksum, playClip, seedFromScene } from '../../../server/world/clipLoop.ts';
import { Director } from '../../../server/world/director.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { K512, sceneNamed } from '../../helpers/groundTruth.ts';
import { storeBackends } from '../../helpers/storeBackends.ts';

const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');

const world = (id: string) => ({
  id,
  prompt: 'p',
  seed: 1,
  voxelSizeM: 0.02,
  createdAt: new Date().toISOString(),
});
const start = (worldId: string, memory: SpatialMemory): Omit<SessionStart, 'startSnapshot'> => ({
  worldId,
  player: 'p',
  model: 'procedural',
  width: 512,
  height: 288,
  fps: 30,
  prompt: 'p',
  startMemory: memory,
});

/** A world of ~0.5 M voxels and 6 keyframes (≈ 12 MB as a full snapshot). */
function courtyard(): SpatialMemory {
  const scene = sceneNamed('courtyard');
  const memory = SpatialMemory.create(0.02);
  for (let i = 0; i < 6; i++) {
    const pose = poseFromYawPitch([i * 2 - 5, 1.7, 6], i * 1.05, -0.1);
    const f = renderScene(scene, pose, K512);
    memory.fuse(f, pose, K512);
    memory.addKeyframe(f, pose, K512);
  }
  return memory;
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

const { backends, stop } = await storeBackends();
afterAll(stop);

describe.each(backends)('recording does not copy the world ($name)', (backend) => {
  it('record joins add only what changed; the start snapshot comes back byte for byte; no value near SQLite’s limit', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path);
    store.upsertWorld(world('w'));
    const memory = courtyard();
    const snapshotBytes = memory.save().byteLength;
    const ids: string[] = [];
    ids.push(store.sessions.start(start('w', memory)));
    store.sessions.end(ids[0]!);
    await store.flush();
    const afterFirst = store.sizeBytes();
    // 20 more record joins of the unchanged world.
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      const id = store.sessions.start(start('w', memory));
      store.sessions.end(id);
      ids.push(id);
    }
    const perJoinMs = (performance.now() - t0) / 20;
    await store.flush();
    const perJoin = (store.sizeBytes() - afterFirst) / 20;
    console.log(
      `full snapshot ${(snapshotBytes / 2 ** 20).toFixed(1)} MiB; store growth per record join ${(perJoin / 1024).toFixed(1)} KiB; ${perJoinMs.toFixed(1)} ms on the event loop per join`,
    );
    expect(perJoin).toBeLessThan(16 * 1024);
    expect(perJoin).toBeLessThan(snapshotBytes / 100);

    // The world changes a little: the next join stores only the chunks that changed.
    const blobs = async (): Promise<number> =>
      Number((await backend.raw<{ n: number }>(path, 'SELECT COUNT(*) AS n FROM snapshot_blobs'))[0]!.n);
    const before = await blobs();
    const pose = poseFromYawPitch([0, 1.7, 4], 0.2, -0.1);
    memory.fuse(renderScene(sceneNamed('courtyard'), pose, K512), pose, K512);
    const changed = [...memory.grid.chunks()].filter((c) => c.revision > 0).length;
    const last = store.sessions.start(start('w', memory));
    store.sessions.end(last);
    await store.flush();
    const added = (await blobs()) - before;
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThanOrEqual(changed);
    const expected = memory.save();
    store.close();

    const ro = new WorldStore(path, { readonly: true });
    expect(bytesEqual(ro.sessions.session(last)!.startSnapshot, expected)).toBe(true);
    expect(bytesEqual(ro.sessions.session(ids[3]!)!.startSnapshot, expected)).toBe(false); // before the change
    expect(SpatialMemory.load(ro.sessions.session(ids[3]!)!.startSnapshot).voxelCount).toBeGreaterThan(
      100_000,
    );
    ro.close();
    const [largest] = await backend.raw<{ n: number }>(
      path,
      `SELECT MAX(n) AS n FROM (SELECT MAX(length(data)) AS n FROM snapshot_blobs
         UNION ALL SELECT MAX(length(start_manifest)) FROM sessions UNION ALL SELECT MAX(length(start_snapshot)) FROM sessions) AS sizes`,
    );
    expect(Number(largest!.n)).toBeLessThan(1_000_000);
  }, 60_000);

  it('a snapshot given as bytes is stored in bounded parts and read back exactly', async () => {
    const path = await backend.fresh();
    const store = new WorldStore(path);
    const bytes = new Uint8Array(40 * 2 ** 20);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < bytes.length; i += 4096) view.setUint32(i, i / 4096, true); // no two parts alike
    const { startMemory: _, ...rest } = start('w', SpatialMemory.create(0.02));
    const id = store.sessions.start({ ...rest, startSnapshot: bytes });
    store.sessions.end(id);
    await store.flush();
    expect(bytesEqual(store.sessions.session(id)!.startSnapshot, bytes)).toBe(true);
    store.close();
    const parts = await backend.raw<{ raw_bytes: number }>(path, 'SELECT raw_bytes FROM snapshot_blobs');
    expect(parts.length).toBe(4); // three parts and the manifest
    for (const p of parts) expect(Number(p.raw_bytes)).toBeLessThanOrEqual(16 * 2 ** 20);
  });

  it('stops a recording at the size cap, says so, and keeps what came before', async () => {
    const path = await backend.fresh();
    const warnings: string[] = [];
    const store = new WorldStore(path, {
      recordingCapBytes: 400_000,
      log: { warn: (_o, msg) => warnings.push(msg), error: (_o, msg) => warnings.push(msg) },
    });
    store.upsertWorld(world('w'));
    const memory = SpatialMemory.create(0.02);
    const id = store.sessions.start(start('w', memory));
    const stopped: string[] = [];
    store.sessions.onStopped((sid, reason) => stopped.push(`${sid}: ${reason}`));
    const jpeg = new Uint8Array(50_000).fill(7);
    const accepted: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      accepted.push(store.sessions.frame(id, { index: i, clipIndex: 0, jpeg, rgbCrc: i, timings: {} }));
      store.sessions.flush();
    }
    expect(accepted.slice(0, 7).every(Boolean)).toBe(true);
    expect(accepted.slice(8).some(Boolean)).toBe(false);
    expect(stopped).toEqual([`${id}: the session reached the recording cap of 0.4 MiB`]);
    expect(store.sessions.recording(id)?.stopped).toMatch(/recording cap/);
    expect(warnings.some((w) => /recording stopped: .*recording cap/.test(w))).toBe(true);
    store.sessions.end(id);
    await store.flush();
    const recorded = store.sessions.session(id)!;
    expect(recorded.frames).toBe(accepted.filter(Boolean).length);
    expect(recorded.frames * 50_000).toBeLessThanOrEqual(400_000);
    store.close();
  });

  it('a session recorded from a world whose keyframe images left RAM replays bit for bit (npm run replay)', async () => {
    const path = await backend.fresh();
    // Two keyframe images in RAM at most: retrieval during the session loads evicted ones back.
    const store = new WorldStore(path, { keyframeRamBytes: 2 * 256 * 144 * 7 });
    store.upsertWorld(world('court'));
    const model = new ProceduralModel({ width: 256, height: 144 });
    const memory = SpatialMemory.create(0.02);
    const scene = sceneNamed('courtyard');
    const first = new Director(memory, model, { prompt: 'a sunny courtyard' });
    const spawn = poseFromYawPitch([0, 1.6, 4], 0, 0);
    seedFromScene(first, scene, spawn, 0);
    const walk = (i: number) => poseFromYawPitch([Math.sin(i * 0.1) * 2, 1.6, 4 - i * 0.08], i * 0.09, 0);
    for (let i = 0; i < 40; i++) {
      for await (const _ of playClip(first, { poses: [walk(i)], seed: i, timeS: i / 30 }));
      if (i % 5 === 0) store.commit('court', memory);
    }
    await store.flush();
    store.commit('court', memory);
    expect(memory.keyframes.size).toBeGreaterThan(2);
    expect(memory.keyframes.residentImages).toBeLessThanOrEqual(2);

    const id = store.sessions.start({
      ...start('court', memory),
      width: 256,
      height: 144,
      prompt: 'a sunny courtyard',
    });
    // As a player's director: the world's seed places what the model invents (replay reads it from the world's row).
    const player = new Director(memory, model, {
      prompt: 'a sunny courtyard',
      worldSeed: world('court').seed,
    });
    let frames = 0;
    for (let i = 0; i < 30; i++) {
      const pose = poseFromYawPitch([1 - i * 0.1, 1.6, 2 + i * 0.05], -i * 0.12, 0);
      const plan = { poses: [pose], seed: 1000 + i, timeS: 2 + i / 30, prompt: 'a sunny courtyard' };
      store.sessions.clip(id, {
        index: i,
        rotations: [[...pose.rotation]],
        positions: [[...pose.position]],
        seed: plan.seed,
        timeS: plan.timeS,
        prompt: plan.prompt,
        inputSeq: i,
      });
      for await (const f of playClip(player, plan))
        store.sessions.frame(id, {
          index: frames++,
          clipIndex: i,
          jpeg: new Uint8Array(10),
          rgbCrc: frameChecksum(f),
          timings: {},
        });
      store.sessions.flush();
      store.commit('court', memory);
    }
    store.sessions.end(id);
    store.close();
    const replay = await run(TSX, ['server/tools/replay.ts', id, '--store', path]);
    expect(replay.stdout).toMatch(
      new RegExp(`replayed ${frames} frames of session ${id}: ${frames}/${frames} match`),
    );
  }, 120_000);
});
