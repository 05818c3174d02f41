import { describe, expect, it } from 'vitest';
import { isCarvedPoint, maskCarvedDepth } from '../../../server/memory/carvedSpace.ts';
import { countVoxelsIn, eraseRegion } from '../../../server/memory/edit.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { EditLog } from '../../../server/world/editLog.ts';
import { type Pose, poseLookAt } from '../../../shared/camera/pose.ts';
import {
  type EditOp,
  type EditRegion,
  editOpSchema,
  insideRegion,
  MAX_EDIT_VOXELS,
  objectSurfacePoints,
  type PlacedObject,
} from '../../../shared/edit/editOps.ts';
import { validate } from '../../../shared/protocol/events.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';

/** The courtyard's fountain (basin, pillar, ball), from 4 cm above the paving up. */
const FOUNTAIN: EditRegion = { shape: 'box', min: [-2.4, 0.04, -2.4], max: [2.4, 2.4, 2.4] };
const VIEWS: Pose[] = [
  poseLookAt([0, 1.7, 7], [0, 0.8, 0]),
  poseLookAt([6, 1.7, 3], [0, 0.8, 0]),
  poseLookAt([-6, 1.7, 3], [0, 0.8, 0]),
];

/** The courtyard around the fountain, fused from the ground truth at three views. */
function courtyardMemory(): SpatialMemory {
  const scene = sceneNamed('courtyard');
  const m = SpatialMemory.create(0.02);
  for (const pose of VIEWS) m.fuse(renderScene(scene, pose, K256, { includeEntities: false }), pose, K256);
  return m;
}

/** FNV-1a of bytes, to compare memories and samples. */
function hash(b: Uint8Array): string {
  let h = 2166136261;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 16777619);
  return (h >>> 0).toString(16);
}

const author = { id: 'p1', name: 'ann' };

describe('memory edits', () => {
  it('erases a region, keeps it empty under later fusion, and undo/redo restore it exactly', () => {
    const m = courtyardMemory();
    const before = canonical(m);
    const inside = countVoxelsIn(m.grid, FOUNTAIN);
    const total = m.voxelCount;
    expect(inside).toBeGreaterThan(5000);
    const log = new EditLog(m.grid);
    const e = log.apply({ op: 'erase', region: FOUNTAIN }, author, new Date(0));
    expect(e.voxels).toBe(inside);
    expect(countVoxelsIn(m.grid, FOUNTAIN)).toBe(0);
    expect(m.voxelCount).toBe(total - inside);
    // The paving around and under the fountain stays.
    expect(countVoxelsIn(m.grid, { shape: 'box', min: [-4, -0.1, -4], max: [4, 0.04, 4] })).toBeGreaterThan(
      10_000,
    );
    // A frame that still shows the fountain (an older view, a model that invents it again) adds nothing there.
    const scene = sceneNamed('courtyard');
    const again = poseLookAt([3, 1.7, 6], [0, 0.8, 0]);
    m.fuse(renderScene(scene, again, K256, { includeEntities: false }), again, K256);
    expect(countVoxelsIn(m.grid, FOUNTAIN)).toBe(0);
    expect(isCarvedPoint(m.grid, 0, 1.8, 0)).toBe(true);
    expect(isCarvedPoint(m.grid, 0, 3, 0)).toBe(false);

    // Undo brings every voxel back as it was; fusion may write there again.
    const m2 = courtyardMemory();
    const log2 = new EditLog(m2.grid);
    log2.apply({ op: 'erase', region: FOUNTAIN }, author, new Date(0));
    expect(log2.undo('p1')?.voxels).toBe(inside);
    expect(canonical(m2)).toEqual(before);
    expect(isCarvedPoint(m2.grid, 0, 1.8, 0)).toBe(false);
    expect(log2.undo('p1')).toBeUndefined();
    // Someone else cannot undo it; redo erases again.
    expect(log2.redo('p2')).toBeUndefined();
    expect(log2.redo('p1')?.voxels).toBe(inside);
    expect(countVoxelsIn(m2.grid, FOUNTAIN)).toBe(0);
    expect(isCarvedPoint(m2.grid, 0, 1.8, 0)).toBe(true);
  });

  it('marks the free-space cells wholly inside an erased region known empty', () => {
    const m = courtyardMemory();
    const freeBefore = [...m.grid.chunks()].reduce(
      (a, c) => a + popcount(c.cells[0]!) + popcount(c.cells[1]!),
      0,
    );
    eraseRegion(m.grid, FOUNTAIN);
    const freeAfter = [...m.grid.chunks()].reduce(
      (a, c) => a + popcount(c.cells[0]!) + popcount(c.cells[1]!),
      0,
    );
    expect(freeAfter).toBeGreaterThan(freeBefore + 100);
  });

  it('places an object as authored voxels that fusion leaves as they are', () => {
    const m = courtyardMemory();
    const crate: PlacedObject = {
      shape: 'box',
      size: [1, 1, 1],
      color: [200, 40, 40],
      texture: 'checker',
      at: [3, 0, 3],
      yaw: 0.3,
    };
    const log = new EditLog(m.grid);
    const e = log.apply({ op: 'insert', object: crate }, author, new Date(0));
    expect(e.voxels).toBeGreaterThan(5000);
    const box: EditRegion = { shape: 'box', min: [2.2, 0.05, 2.2], max: [3.8, 1.1, 3.8] };
    let authored = 0;
    let red = 0;
    m.forEachVoxel((v) => {
      if (!insideRegion(box, v.x, v.y, v.z)) return;
      if (v.authored) authored++;
      if (v.r > 100 && v.g < 60) red++;
    });
    expect(authored).toBeGreaterThan(4000);
    expect(red).toBeGreaterThan(2000);
    // The ground truth (no crate there) fused over it changes none of its voxels.
    const snapshotOf = (): string[] => {
      const out: string[] = [];
      m.forEachVoxel((v) => {
        if (v.authored) out.push(`${v.x},${v.y},${v.z},${v.r},${v.g},${v.b}`);
      });
      return out;
    };
    const held = snapshotOf();
    const scene = sceneNamed('courtyard');
    const pose = poseLookAt([5, 1.7, 6], [3, 0.5, 3]);
    m.fuse(renderScene(scene, pose, K256, { includeEntities: false }), pose, K256);
    expect(snapshotOf()).toEqual(held);
    // It survives a snapshot round trip, authored flag and all.
    const back = SpatialMemory.load(m.save());
    let authoredBack = 0;
    back.forEachVoxel((v) => {
      if (v.authored) authoredBack++;
    });
    expect(authoredBack).toBe(held.length);
    // Undo takes it away again.
    log.undo('p1');
    expect(snapshotOf()).toEqual([]);
  });

  it('recolours a region keeping its shading', () => {
    const m = courtyardMemory();
    const region: EditRegion = { shape: 'sphere', center: [0, 1.8, 0], radius: 0.5 };
    const log = new EditLog(m.grid);
    const e = log.apply({ op: 'recolor', region, color: [40, 90, 220] }, author, new Date(0));
    expect(e.voxels).toBeGreaterThan(300);
    const blues: number[] = [];
    m.forEachVoxel((v) => {
      if (!insideRegion(region, v.x, v.y, v.z)) return;
      expect(v.authored).toBe(true);
      expect(v.b).toBeGreaterThan(v.r);
      blues.push(v.b);
    });
    // Shading stays: the recoloured ball is not one flat colour.
    expect(Math.max(...blues) - Math.min(...blues)).toBeGreaterThan(20);
  });

  it('erases the voxels under a brush stroke', () => {
    const m = courtyardMemory();
    const stroke: EditRegion = {
      shape: 'stroke',
      points: [
        [-3, 0, 4],
        [-1, 0, 4],
        [1, 0, 4.5],
      ],
      radius: 0.2,
    };
    const n = countVoxelsIn(m.grid, stroke);
    expect(n).toBeGreaterThan(1000);
    const log = new EditLog(m.grid);
    expect(log.apply({ op: 'erase', region: stroke }, author, new Date(0)).voxels).toBe(n);
    expect(countVoxelsIn(m.grid, stroke)).toBe(0);
  });

  it('refuses an edit of more than MAX_EDIT_VOXELS voxels whole, changing nothing', () => {
    const m = SpatialMemory.create(0.004);
    // A dense 3.2 m slab of voxels: too many for one erase.
    const n = 1_000_000;
    const positions = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      positions[i * 3] = (i % 1000) * 0.0032;
      positions[i * 3 + 1] = 0.5;
      positions[i * 3 + 2] = Math.floor(i / 1000) * 0.0032;
    }
    const log = new EditLog(m.grid);
    expect(() =>
      log.insertPoints(
        { count: n, positions, colors: new Uint8Array(n * 3) },
        { op: 'insertPly', source: 'slab.ply', points: n, at: [0, 0, 0], scale: 1 },
        author,
        new Date(0),
      ),
    ).toThrow(/at most 400000/);
    expect(m.voxelCount).toBe(0);
    expect(log.all).toHaveLength(0);
    expect(MAX_EDIT_VOXELS).toBe(400_000);
  });

  it('drops the depth of conditioning frames where they show erased space', () => {
    const m = courtyardMemory();
    const scene = sceneNamed('courtyard');
    const pose = VIEWS[0]!;
    const frame = renderScene(scene, pose, K256, { includeEntities: false });
    expect(maskCarvedDepth(m.grid, frame.depth, pose, K256, 20)).toBeUndefined();
    new EditLog(m.grid).apply({ op: 'erase', region: FOUNTAIN }, author, new Date(0));
    const masked = maskCarvedDepth(m.grid, frame.depth, pose, K256, 20)!;
    // The centre of the view is the fountain: gone; the top-left corner (far wall) stays.
    const centre = (K256.height >> 1) * K256.width + (K256.width >> 1);
    expect(frame.depth[centre]).toBeGreaterThan(0);
    expect(masked[centre]).toBe(0);
    expect(masked[K256.width * 10 + 10]).toBe(frame.depth[K256.width * 10 + 10]);
  });

  it('validates edit operations at the edge: shapes, extents, colours', () => {
    const ok: EditOp = { op: 'erase', region: { shape: 'sphere', center: [1, 1, 1], radius: 0.5 } };
    expect(validate(editOpSchema, ok).ok).toBe(true);
    const bad: unknown[] = [
      { op: 'erase', region: { shape: 'box', min: [0, 0, 0], max: [20, 1, 1] } },
      { op: 'erase', region: { shape: 'box', min: [1, 0, 0], max: [0, 1, 1] } },
      { op: 'erase', region: { shape: 'sphere', center: [0, 0, Number.NaN], radius: 1 } },
      { op: 'erase', region: { shape: 'sphere', center: [0, 0, 0], radius: 9 } },
      { op: 'recolor', region: { shape: 'sphere', center: [0, 0, 0], radius: 1 }, color: [300, 0, 0] },
      {
        op: 'insert',
        object: { shape: 'box', size: [9, 1, 1], color: [1, 2, 3], texture: 'plain', at: [0, 0, 0], yaw: 0 },
      },
      {
        op: 'insert',
        object: { shape: 'tree', size: [1, 1, 1], color: [1, 2, 3], texture: 'plain', at: [0, 0, 0], yaw: 0 },
      },
      {
        op: 'erase',
        region: { shape: 'stroke', points: Array.from({ length: 65 }, () => [0, 0, 0]), radius: 0.1 },
      },
      {
        op: 'erase',
        region: {
          shape: 'stroke',
          points: [
            [0, 0, 0],
            [10, 0, 0],
          ],
          radius: 0.1,
        },
      },
      { op: 'paint' },
    ];
    for (const b of bad) expect(validate(editOpSchema, b).ok, JSON.stringify(b)).toBe(false);
  });

  it('samples a placed object the same way every time, resting on `at`', () => {
    const o: PlacedObject = {
      shape: 'pillar',
      size: [0.6, 2, 0.6],
      color: [90, 90, 90],
      texture: 'stripes',
      at: [1, 0.5, -2],
      yaw: 0,
    };
    const a = objectSurfacePoints(o, 0.01);
    const b = objectSurfacePoints(o, 0.01);
    expect(a.count).toBeGreaterThan(10_000);
    expect(hash(a.colors)).toBe(hash(b.colors));
    expect(hash(new Uint8Array(a.positions.buffer))).toBe(hash(new Uint8Array(b.positions.buffer)));
    let minY = Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < a.count; i++) {
      minY = Math.min(minY, a.positions[i * 3 + 1]!);
      maxY = Math.max(maxY, a.positions[i * 3 + 1]!);
    }
    expect(minY).toBeCloseTo(0.5, 5);
    expect(maxY).toBeCloseTo(2.5, 5);
  });

  it('undo leaves a voxel that a later edit changed to that edit', () => {
    const m = courtyardMemory();
    const log = new EditLog(m.grid);
    const ball: EditRegion = { shape: 'sphere', center: [0, 1.8, 0], radius: 0.5 };
    log.apply({ op: 'recolor', region: ball, color: [255, 0, 0] }, author, new Date(0));
    const d = log.apply(
      { op: 'recolor', region: ball, color: [0, 255, 0] },
      { id: 'p2', name: 'bo' },
      new Date(0),
    );
    // Ann's undo finds Bo's colour on every voxel: nothing of hers to undo there.
    const undone = log.undo('p1')!;
    expect(undone.voxels).toBe(0);
    let green = 0;
    m.forEachVoxel((v) => {
      if (insideRegion(ball, v.x, v.y, v.z) && v.g > v.r) green++;
    });
    expect(green).toBe(d.voxels);
  });
});

/** Every voxel and every chunk's free cells, in a canonical order (slots may be renumbered). */
function canonical(m: SpatialMemory): { voxels: string[]; free: string[] } {
  const voxels: string[] = [];
  m.forEachVoxel((v) => voxels.push(JSON.stringify(v)));
  const free = [...m.grid.chunks()]
    .filter((c) => c.hasFreeSpace)
    .map((c) => `${c.key}:${c.cells[0]}:${c.cells[1]}`);
  return { voxels: voxels.sort(), free: free.sort() };
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}
