import { describe, expect, it } from 'vitest';
import { MirrorCache } from '../../../client/src/mirrorCache.ts';
import { MAX_MIRROR_BATCH_BYTES, MirrorStream, mirrorLevelAt } from '../../../server/memory/mirrorStream.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { EditLog } from '../../../server/world/editLog.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import type { EditRegion } from '../../../shared/edit/editOps.ts';
import type { Vec3 } from '../../../shared/math/vec3.ts';
import { MAX_MIRROR_EVICTIONS } from '../../../shared/protocol/events.ts';
import { decodeMirrorBatch, MIRROR_RADIUS_M } from '../../../shared/protocol/mirrorCodec.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { chunkDistance, chunksWithin, mirrorPointsIn } from '../../helpers/memoryChunks.ts';

const EYE: Vec3 = [0, 1.7, 8];
const FORWARD: Vec3 = [0, 0, -1];

/** The courtyard seen from its spawn, looking around (four quarter turns), fused from the ground truth. */
function courtyardMemory(): SpatialMemory {
  const scene = sceneNamed('courtyard');
  const memory = SpatialMemory.create(0.02);
  for (let i = 0; i < 4; i++) {
    const pose = poseFromYawPitch(EYE, (i * Math.PI) / 2, -0.15);
    memory.fuse(renderScene(scene, pose, K256, { includeEntities: false }), pose, K256);
  }
  return memory;
}

/** A stream and a client cache wired together, on a clock the test moves. */
function wire(memory: SpatialMemory, kbps = 4000) {
  const sent: Uint8Array[] = [];
  const stream = new MirrorStream(
    memory.grid,
    (b) => {
      sent.push(b);
      return b.length;
    },
    kbps,
    0,
  );
  const cache = new MirrorCache();
  let now = 0;
  /** Runs the stream for `ms` of simulated time in 40 ms ticks; the client acknowledges each batch at once. */
  const run = (ms: number, eye = EYE, forward = FORWARD, ack = true): void => {
    for (const end = now + ms; now < end; now += 40) {
      if (!stream.pump(eye, forward, now) || !ack) continue;
      const bytes = sent.at(-1)!;
      const batch = decodeMirrorBatch(bytes);
      cache.apply(batch, bytes.length);
      expect(stream.acknowledge(cache.ack(batch.seq))).toBeUndefined();
    }
  };
  return { stream, cache, sent, run, now: () => now };
}

describe('the memory mirror stream', () => {
  it('sends the nearest in-view chunks first (coarsest first), one batch at a time, then every chunk within reach at its level', () => {
    const memory = courtyardMemory();
    const { stream, cache, sent, run } = wire(memory);
    const size = memory.grid.chunkSizeM;
    expect(stream.pump(EYE, FORWARD, 0)).toBe(true);
    // Nothing more until the client acknowledges.
    expect(stream.pump(EYE, FORWARD, 1000)).toBe(false);
    const first = decodeMirrorBatch(sent[0]!);
    expect(sent[0]!.length).toBeLessThanOrEqual(MAX_MIRROR_BATCH_BYTES);
    expect(first.chunks.length).toBeGreaterThan(3);
    // Coarsest first: the surroundings arrive quickly, then sharpen.
    expect(first.chunks.every((c) => c.level === 2)).toBe(true);
    const firstDistances = first.chunks.map((c) => chunkDistance(EYE, c.cx, c.cy, c.cz, size));
    const inReach = chunksWithin(memory.grid, EYE, MIRROR_RADIUS_M).map((c) => c.chunk);
    const median = inReach.map((c) => chunkDistance(EYE, c.cx, c.cy, c.cz, size)).sort((a, b) => a - b)[
      inReach.length >> 1
    ]!;
    expect(Math.max(...firstDistances)).toBeLessThan(median);
    // Wrong or unexpected acknowledgements are refused and change nothing.
    expect(stream.acknowledge({ seq: 5, evicted: [] })).toMatch(/batch 0 is waiting/);
    cache.apply(first);
    expect(stream.acknowledge(cache.ack(0))).toBeUndefined();
    expect(stream.acknowledge({ seq: 0, evicted: [] })).toMatch(/no mirror batch/);
    run(20_000);
    expect(stream.chunksHeld).toBe(inReach.length);
    expect(cache.chunks.size).toBe(inReach.length);
    for (const c of inReach) {
      const held = cache.chunks.get(`${c.cx},${c.cy},${c.cz}`)!;
      expect(held.level).toBe(mirrorLevelAt(chunkDistance(EYE, c.cx, c.cy, c.cz, size)));
      expect(held.revision).toBe(c.revision);
    }
    // Level-0 points are the voxels' mean positions to within a position step (2.5 mm), colours to 1/255.
    const near = inReach.find(
      (c) => cache.chunks.get(`${c.cx},${c.cy},${c.cz}`)!.level === 0 && c.count > 50,
    )!;
    const held = cache.chunks.get(`${near.cx},${near.cy},${near.cz}`)!;
    expect(held.count).toBe(near.count);
    const pts: number[][] = [];
    for (let i = 0; i < held.points.length; i += 6) {
      const p = held.points;
      pts.push([
        near.cx * size + ((p[i]! + 0.5) * size) / 256,
        near.cy * size + ((p[i + 1]! + 0.5) * size) / 256,
        near.cz * size + ((p[i + 2]! + 0.5) * size) / 256,
        p[i + 3]!,
      ]);
    }
    const voxels: number[][] = [];
    memory.grid.forEachVoxel((v) => {
      const [vx, vy, vz] = memory.grid.voxelOf(v.x, v.y, v.z);
      if (vx >> 5 === near.cx && vy >> 5 === near.cy && vz >> 5 === near.cz)
        voxels.push([v.x, v.y, v.z, v.r]);
    });
    for (let i = 0; i < pts.length; i++) {
      for (let a = 0; a < 3; a++)
        expect(Math.abs(pts[i]![a]! - voxels[i]![a]!)).toBeLessThanOrEqual(size / 256);
      expect(Math.abs(pts[i]![3]! - voxels[i]![3]!)).toBeLessThanOrEqual(1);
    }
    // Held and unchanged: nothing more to send.
    const before = sent.length;
    run(6000);
    expect(sent.length).toBe(before);
  });

  it('resends what changed a lot, refines chunks the player walks up to, removes deleted ones, resends dropped ones', () => {
    const memory = courtyardMemory();
    const { stream, cache, sent, run } = wire(memory);
    run(20_000);
    const held = stream.chunksHeld;
    // A new view (further in) grows chunks: they go again, and nothing else does.
    const scene = sceneNamed('courtyard');
    const pose = poseFromYawPitch([0, 1.7, 2], 0.6, -0.3);
    memory.fuse(renderScene(scene, pose, K256, { includeEntities: false }), pose, K256);
    const before = sent.length;
    run(2000);
    const resent = sent.slice(before).flatMap((b) => decodeMirrorBatch(b).chunks);
    expect(resent.length).toBeGreaterThan(0);
    for (const c of resent) {
      const chunk = memory.grid.getChunk(
        [...memory.grid.chunks()].find((k) => k.cx === c.cx && k.cy === c.cy && k.cz === c.cz)!.key,
      )!;
      expect(c.revision).toBe(chunk.revision);
    }
    // Walking up to far chunks sends them again at a finer level.
    const far = [...cache.chunks.values()].find((c) => c.level === 2)!;
    const size = memory.grid.chunkSizeM;
    const nearFar: Vec3 = [(far.cx + 0.5) * size, (far.cy + 0.5) * size + 1, (far.cz + 0.5) * size];
    run(4000, nearFar);
    expect(cache.chunks.get(far.id)!.level).toBe(0);
    // A chunk deleted from the memory is removed from the client.
    const victim = [...memory.grid.chunks()].find((c) => cache.chunks.has(`${c.cx},${c.cy},${c.cz}`))!;
    memory.grid.removeChunk(victim.key);
    run(500, nearFar);
    expect(cache.chunks.has(`${victim.cx},${victim.cy},${victim.cz}`)).toBe(false);
    // Chunks the client dropped (and said so) come back when the player is near them again.
    const dropped = cache.evictFarther([100, 0, 100], 1);
    expect(dropped.length).toBeGreaterThan(held / 2);
    // Reports go out in parts of at most MAX_MIRROR_EVICTIONS.
    let reports = 0;
    for (let r = cache.report(); r; r = cache.report(), reports++) {
      expect(r.evicted.length).toBeLessThanOrEqual(MAX_MIRROR_EVICTIONS);
      expect(stream.acknowledge(r)).toBeUndefined();
    }
    expect(reports).toBe(Math.ceil(dropped.length / MAX_MIRROR_EVICTIONS));
    run(20_000, nearFar);
    expect(cache.chunks.size).toBe(stream.chunksHeld);
    expect(cache.chunks.size).toBeGreaterThan(held / 2);
  });

  it('an edit shows in the client at once (its own guess), and the edited chunks go again before anything else', () => {
    const memory = courtyardMemory();
    const { stream, cache, sent, run } = wire(memory);
    run(20_000);
    const region: EditRegion = { shape: 'sphere', center: [0, 1.2, 0], radius: 1 };
    const pointsIn = (): number => mirrorPointsIn(cache.chunks.values(), region);
    expect(pointsIn()).toBeGreaterThan(50);
    // The client's guess: the points inside go before the server says anything.
    const change = cache.applyEdit({ op: 'erase', region });
    expect(change.added.length + change.removed.length).toBeGreaterThan(0);
    expect(pointsIn()).toBe(0);
    // A placed crate shows at once too.
    const before = cache.points;
    cache.applyEdit({
      op: 'insert',
      object: {
        shape: 'box',
        size: [0.5, 0.5, 0.5],
        color: [200, 0, 0],
        texture: 'plain',
        at: [4, 0, 4],
        yaw: 0,
      },
    });
    expect(cache.points).toBeGreaterThan(before + 1000);
    // The server's edit: a small change of a chunk would wait for the 15 s refresh; an edited one goes next.
    const e = new EditLog(memory.grid).apply(
      { op: 'recolor', region: { shape: 'sphere', center: [1, 0, 5], radius: 0.3 }, color: [0, 0, 255] },
      { id: 'a', name: 'a' },
      new Date(0),
    );
    expect(e.chunkKeys.length).toBeGreaterThan(0);
    stream.markEdited(e.chunkKeys);
    const n = sent.length;
    run(200);
    const next = sent.slice(n).flatMap((b) => decodeMirrorBatch(b).chunks);
    for (const key of e.chunkKeys) {
      const c = memory.grid.getChunk(key)!;
      expect(next.find((x) => x.cx === c.cx && x.cy === c.cy && x.cz === c.cz)?.revision).toBe(c.revision);
    }
  });

  it('keeps to its budget, and a client that never acknowledges gets one batch', () => {
    const memory = courtyardMemory();
    const kbps = 1000;
    const { stream, run } = wire(memory, kbps);
    run(3000);
    // A quarter second of burst plus three seconds at the rate.
    expect(stream.bytesSent).toBeLessThanOrEqual(MAX_MIRROR_BATCH_BYTES + (kbps / 8) * 1000 * 3);
    expect(stream.bytesSent).toBeGreaterThan((kbps / 8) * 1000 * 2);
    const silent = wire(memory);
    silent.run(5000, EYE, FORWARD, false);
    expect(silent.sent.length).toBe(1);
    expect(silent.stream.waiting).toBe(true);
  });
});
