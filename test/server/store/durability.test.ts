import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { psnr } from '../../../server/metrics/imageMetrics.ts';
import { DEFAULT_CONTROLLER } from '../../../shared/camera/controller.ts';
import { Bot, frameRgb, sleep } from '../../helpers/bot.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';

interface Committed {
  chunks: Map<number, number>;
  keyframes: Map<number, string>;
  voxels: number;
}

function readStore(path: string): Committed {
  const db = new Database(path, { readonly: true });
  const chunks = new Map<number, number>();
  let voxels = 0;
  for (const r of db.prepare("SELECT chunk_key, voxels FROM chunks WHERE world_id = 'room'").all() as {
    chunk_key: number;
    voxels: number;
  }[]) {
    chunks.set(r.chunk_key, r.voxels);
    voxels += r.voxels;
  }
  const keyframes = new Map<number, string>();
  for (const r of db.prepare("SELECT id, data FROM keyframes WHERE world_id = 'room'").all() as {
    id: number;
    data: Buffer;
  }[])
    keyframes.set(r.id, r.data.toString('base64'));
  db.close();
  return { chunks, keyframes, voxels };
}

describe('durability: SIGKILL mid-session loses no committed world data', () => {
  it('kills the server hard, restarts it, and finds every committed voxel and keyframe', async () => {
    const store = join(mkdtempSync(join(tmpdir(), 'spatia-durable-')), 'worlds.sqlite');
    const first = await spawnServer(['--store', store]);
    const bot = new Bot(first.url);
    await bot.join('room', 'durable');
    const atSpawn = await bot.nextFrame();
    // Turn a full circle (new surfaces every frame), then keep standing at the spawn heading.
    const totalPx = (2 * Math.PI) / DEFAULT_CONTROLLER.mouseRadPerPx;
    for (let i = 0; i < 120; i++) {
      bot.input({ dtMs: 1000 / 60, lookDxPx: totalPx / 120 });
      await sleep(1000 / 60);
    }
    const seq = bot.lastSeq;
    await bot.nextFrame((f) => f.header.inputSeq === seq);
    // Keyframes are taken as clips finish, so how many a turn leaves depends on the machine's speed:
    // keep turning until the memory holds two, then wait for them to be committed.
    const deadline = performance.now() + 30_000;
    while ((bot.stats.at(-1)?.keyframes ?? 0) < 2 && performance.now() < deadline) {
      bot.input({ dtMs: 1000 / 60, lookDxPx: totalPx / 120 });
      await sleep(1000 / 60);
    }
    let before = readStore(store);
    while (before.keyframes.size < 2 && performance.now() < deadline) {
      await sleep(500);
      before = readStore(store);
    }
    await sleep(2500); // > 2 commit intervals
    before = readStore(store);
    expect(before.voxels).toBeGreaterThan(100_000);
    expect(before.keyframes.size).toBeGreaterThan(1);
    await killHard(first.child); // mid-session: the bot is still connected and frames are flowing
    bot.close();

    const after = readStore(store);
    for (const [key, voxels] of before.chunks)
      expect(after.chunks.get(key) ?? -1).toBeGreaterThanOrEqual(voxels);
    for (const [id, data] of before.keyframes) expect(after.keyframes.get(id)).toBe(data);

    const second = await spawnServer(['--store', store]);
    try {
      const again = new Bot(second.url);
      await again.join('room', 'durable-again');
      const restored = await again.nextFrame();
      const deadline = performance.now() + 5000;
      while (again.stats.length === 0 && performance.now() < deadline) await sleep(100);
      expect(again.stats[0]!.voxels).toBeGreaterThanOrEqual(after.voxels);
      expect(again.stats[0]!.keyframes).toBeGreaterThanOrEqual(after.keyframes.size);
      // The restored world looks the same from the spawn as before the crash.
      expect(psnr(await frameRgb(restored), await frameRgb(atSpawn))).toBeGreaterThan(35);
      again.close();
    } finally {
      await killHard(second.child);
    }
  }, 90_000);
});
