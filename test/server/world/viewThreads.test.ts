import { describe, expect, it } from 'vitest';
import { saveSnapshot } from '../../../server/memory/snapshot.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { GridMirror, GridPublisher, viewFromShared } from '../../../server/memory/viewShare.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { playClip, seedFromScene } from '../../../server/world/clipLoop.ts';
import { Director } from '../../../server/world/director.ts';
import { ViewThreads } from '../../../server/world/viewThreads.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { Bot } from '../../helpers/bot.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';

const viewBytes = (v: {
  rgb: Uint8Array;
  depth: Float32Array;
  voxelRef: Int32Array;
  freeDepth?: Float32Array;
}) =>
  Buffer.concat([
    Buffer.from(v.rgb),
    Buffer.from(v.depth.buffer),
    Buffer.from(v.voxelRef.buffer),
    Buffer.from(v.freeDepth!.buffer),
  ]);

describe('memory views rendered from shared chunks', () => {
  it('a mirror renders the same bytes as the grid through growth, eviction and reloading', () => {
    const k = intrinsicsFromFov(192, 108, 75);
    const scene = sceneNamed('room');
    const memory = SpatialMemory.create(0.02);
    const publisher = new GridPublisher(memory.grid);
    const mirror = new GridMirror();
    const pose = (i: number) => poseFromYawPitch([0.2 * i - 1, 1.6, 2 - 0.15 * i], 0.3 * i - 0.6, -0.1);
    const same = (i: number) => {
      // The sync crosses a structured clone, as it does to a thread.
      mirror.apply(structuredClone(publisher.sync()));
      const mine = memory.render(pose(i), k);
      const theirs = viewFromShared(mirror.render(pose(i), k), publisher, k);
      expect(viewBytes(theirs).equals(viewBytes(mine))).toBe(true);
      expect(theirs.chunks).toEqual(mine.chunks);
    };
    for (let i = 0; i < 6; i++) {
      memory.fuse(renderScene(scene, pose(i), k), pose(i), k);
      same(i);
    }
    // Evict a third of the chunks, then load copies of them back (new objects, appended).
    const grid = memory.grid;
    const evicted = [...grid.chunks()].filter((_, i) => i % 3 === 0).map((c) => grid.removeChunk(c.key)!);
    same(2);
    const snapshot = SpatialMemory.create(0.02);
    for (const c of evicted) snapshot.grid.putChunk(c);
    const copies = SpatialMemory.load(snapshot.save());
    for (const c of copies.grid.chunks()) grid.putChunk(c);
    same(3);
    memory.fuse(renderScene(scene, pose(7), k), pose(7), k);
    same(7);
  });

  it('a director walk with view threads gives the same frames and memory bytes as without', async () => {
    const size = { width: 256, height: 144 };
    const scene = sceneNamed('courtyard');
    const walk = (i: number) => poseFromYawPitch([Math.sin(i * 0.1) * 2, 1.6, 4 - i * 0.1], i * 0.11, 0);
    const threads = new ViewThreads(2);
    const run = async (views?: ViewThreads): Promise<{ frames: Buffer[]; memory: Buffer }> => {
      const memory = SpatialMemory.create(0.02);
      const director = new Director(memory, new ProceduralModel(size), {
        prompt: 'a sunny courtyard',
        views,
      });
      seedFromScene(director, scene, walk(0), 0);
      const frames: Buffer[] = [];
      // Clips of four frames with a repeated pose: split over the threads and this one, drawn once.
      for (let i = 0; i < 24; i += 3)
        for await (const f of playClip(director, {
          poses: [walk(i), walk(i + 1), walk(i + 1), walk(i + 2)],
          seed: i,
          timeS: i / 30,
        }))
          frames.push(Buffer.concat([Buffer.from(f.rgb), Buffer.from(f.depth!.buffer)]));
      return { frames, memory: Buffer.from(saveSnapshot(memory.grid, memory.keyframes)) };
    };
    const single = await run();
    const threaded = await run(threads);
    // 8 clips of 3 distinct poses in 3 shares: the two threads drew two of each.
    expect(threads.threadViews).toBe(16);
    await threads.dispose();
    expect(threaded.frames.length).toBe(single.frames.length);
    threaded.frames.forEach((f, i) => {
      expect(f.equals(single.frames[i]!)).toBe(true);
    });
    expect(threaded.memory.equals(single.memory)).toBe(true);
  }, 60_000);

  it('npm start -- --view-threads 1 serves a player (views from the thread)', async () => {
    const server = await spawnServer(['--view-threads', '1', '--store', 'none']);
    try {
      const bot = new Bot(server.url);
      await bot.join('room', 'threads');
      for (let i = 0; i < 5; i++) await bot.nextFrame();
      expect(bot.frames.length).toBeGreaterThanOrEqual(5);
      bot.close();
    } finally {
      await killHard(server.child);
    }
  }, 60_000);
});
