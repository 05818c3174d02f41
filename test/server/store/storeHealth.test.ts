import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { Bot, sleep } from '../../helpers/bot.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';
import { startRecording, storeError, testWorld } from '../../helpers/storeFixtures.ts';

function fused(memory: SpatialMemory, i: number): void {
  const pose = poseFromYawPitch([i, 1.7, 6], i * 0.8, -0.1);
  const f = renderScene(sceneNamed('courtyard'), pose, K256);
  memory.fuse(f, pose, K256);
  memory.addKeyframe(f, pose, K256);
}

describe('a store whose file disappears says so and never claims success', () => {
  it('deleting the store directory: health degraded, one error logged, commits, joins and recordings refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-health-'));
    const errors: string[] = [];
    const store = new WorldStore(join(dir, 'w.sqlite'), {
      log: { warn: () => {}, error: (_o, msg) => errors.push(msg) },
    });
    store.upsertWorld(testWorld());
    const memory = SpatialMemory.create(0.05);
    fused(memory, 0);
    store.commit('w', memory);
    const rec = startRecording(store, memory);
    await store.flush();
    expect(store.health()).toEqual({ ok: true, pendingWrites: 0, pendingBytes: 0, lockWaitMs: 0 });

    rmSync(dir, { recursive: true, force: true });
    const h = store.health();
    expect(h.ok).toBe(false);
    expect(h.reason).toMatch(/world store .*w\.sqlite was deleted while the server ran: nothing is saved/);
    expect(errors).toHaveLength(1);
    fused(memory, 1);
    expect(storeError(() => store.commit('w', memory)).message).toMatch(/was deleted/);
    expect(storeError(() => store.upsertWorld({ ...store.getWorld('w')!, id: 'new' })).message).toMatch(
      /was deleted/,
    );
    expect(
      storeError(() => store.sessions.start({ ...store.sessions.session(rec)!, startMemory: memory }))
        .message,
    ).toMatch(/was deleted/);
    const stopped: string[] = [];
    store.sessions.onStopped((_id, reason) => stopped.push(reason));
    expect(
      store.sessions.frame(rec, { index: 0, clipIndex: 0, jpeg: new Uint8Array(9), rgbCrc: 0, timings: {} }),
    ).toBe(false);
    expect(stopped[0]).toMatch(/was deleted/);
    expect(errors).toHaveLength(1); // reported once, not on every call
    store.close();
  });

  it('a store file replaced by another is reported too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-health-'));
    const path = join(dir, 'w.sqlite');
    const store = new WorldStore(path, { log: { warn: () => {}, error: () => {} } });
    writeFileSync(join(dir, 'other'), '');
    renameSync(join(dir, 'other'), path);
    expect(store.health()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/was replaced by another file/),
    });
    store.close();
  });

  it('the running server logs the loss when its store directory is deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-health-'));
    const server = await spawnServer(['--store', join(dir, 'worlds.sqlite')]);
    try {
      const bot = new Bot(server.url);
      await bot.join('room', 'h');
      await bot.nextFrame();
      rmSync(dir, { recursive: true, force: true });
      const deadline = performance.now() + 10_000;
      while (!/was deleted while the server ran/.test(server.output()) && performance.now() < deadline)
        await sleep(100);
      expect(server.output()).toMatch(/was deleted while the server ran/);
      expect(server.child.exitCode).toBeNull(); // still serving
      bot.close();
    } finally {
      await killHard(server.child);
    }
  }, 60_000);
});
