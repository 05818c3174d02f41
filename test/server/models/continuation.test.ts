import { describe, expect, it } from 'vitest';
import { drive } from '../../../server/eval/consistencyEval.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import {
  fitWalls,
  type RememberedPoints,
  WALL_CONTINUE_M,
} from '../../../server/models/procedural/continuation.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { loadBundledScene } from '../../../server/scene/loadScene.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import type { Scene } from '../../../server/scene/sceneFormat.ts';
import { sampleTrajectory } from '../../../server/world/trajectory.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';

/**
 * The procedural model continues what the memory shows: walls go on past where they were seen, as
 * high and coloured alike, and the invented floor and walls take the remembered colours.
 */
const W = 256;
const H = 144;

function points(list: [number, number, number, [number, number, number]][]): RememberedPoints {
  return {
    x: list.map((p) => p[0]),
    y: list.map((p) => p[1]),
    z: list.map((p) => p[2]),
    r: list.map((p) => p[3][0]),
    g: list.map((p) => p[3][1]),
    b: list.map((p) => p[3][2]),
  };
}

describe('walls found in the memory', () => {
  it('finds a wall (not a crown, a pillar or a bench) and continues it past its seen ends', () => {
    const list: [number, number, number, [number, number, number]][] = [];
    // A wall at z = −5 from x = −3 to 3, 4 m high, brick-red.
    for (let x = -3; x <= 3; x += 0.1) for (let y = 0; y <= 4; y += 0.2) list.push([x, y, -5, [160, 80, 60]]);
    // A tree's crown (a sphere of radius 1.3 at 3.2 m), a pillar and a bench in front of it.
    for (let i = 0; i < 600; i++) {
      const a = (i * 2.399) % (2 * Math.PI);
      const h = ((i * 0.618) % 1) * 2 - 1;
      const c = Math.sqrt(1 - h * h);
      list.push([-1 + 1.3 * c * Math.cos(a), 3.2 + 1.3 * h, -2 + 1.3 * c * Math.sin(a), [60, 140, 50]]);
    }
    for (let y = 0; y <= 3; y += 0.05)
      for (let a = 0; a < 6; a++)
        list.push([2 + 0.3 * Math.cos(a), y, -3 + 0.3 * Math.sin(a), [120, 120, 120]]);
    for (let x = 0; x <= 2; x += 0.05) list.push([x, 0.5, -1, [90, 60, 30]]);
    const walls = fitWalls(points(list), 0, [0, 4]);
    expect(walls).toHaveLength(1);
    const w = walls[0]!;
    expect(w.nz).toBeCloseTo(1, 2); // facing the viewer at z = 4
    expect(Math.abs(w.nx)).toBeLessThan(0.05);
    expect((w.z0 + w.z1) / 2).toBeCloseTo(-5, 1);
    expect(Math.min(w.x0, w.x1)).toBeCloseTo(-3 - WALL_CONTINUE_M, 0);
    expect(Math.max(w.x0, w.x1)).toBeCloseTo(3 + WALL_CONTINUE_M, 0);
    expect(w.topY).toBeGreaterThan(3.7);
    expect(w.colour).toEqual([160, 80, 60]);
    // Nothing but the crown, the pillar and the bench: no wall.
    expect(fitWalls(points(list.filter((p) => p[2] !== -5)), 0, [0, 4])).toEqual([]);
  });
});

/**
 * A frame turned away from the one remembered view: the mean colour of the invented pixels beside
 * the seam (6 px either side, within a height band) against the remembered ones'. Measured before
 * the continuation (the invented world was the style's own): courtyard wall 124.5, floor 1.4; room
 * wall 32.6, floor 21.6 (RGB distance); with it 16.4, 4.7, 7.8, 19.9.
 */
async function seamColourDistance(
  scene: Scene,
  eye: [number, number, number],
  yaw: number,
  prompt: string,
): Promise<{ floor: number; wall: number }> {
  const model = new ProceduralModel({ width: W, height: H, entities: false });
  const k = model.intrinsics;
  const seen = poseFromYawPitch(eye, 0, -0.05);
  const turned = poseFromYawPitch(eye, yaw, -0.05);
  const memory = SpatialMemory.create(0.05);
  const gt = renderScene(scene, seen, k, { includeEntities: false });
  memory.fuse(gt, seen, k);
  const view = memory.render(turned, k);
  const references = [{ pose: seen, intrinsics: k, rgb: gt.rgb, depth: gt.depth }];
  const req = { clipId: 0, poses: [turned], intrinsics: k, memoryViews: [view], references, preceding: [] };
  let rgb: Uint8Array = new Uint8Array(0);
  let depth: Float32Array = new Float32Array(0);
  for await (const f of model.generate({ ...req, prompt, seed: 3, timeS: 0 })) {
    rgb = f.rgb;
    depth = f.depth!;
  }
  const r = turned.rotation;
  const distance = (inBand: (y: number) => boolean): number => {
    const sums = [
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ];
    for (let y = 0; y < H; y++)
      for (let x = 1; x < W; x++) {
        if (view.coverage[y * W + x] === view.coverage[y * W + x - 1]) continue;
        for (let xx = Math.max(0, x - 6); xx <= Math.min(W - 1, x + 6); xx++) {
          const q = y * W + xx;
          const d = depth[q]!;
          if (!(d > 0)) continue;
          const worldY = r[3] * ((xx - k.cx) / k.fx) * d + r[4] * ((y - k.cy) / k.fy) * d + r[5] * d + eye[1];
          if (!inBand(worldY)) continue;
          const s = sums[view.coverage[q]!]!;
          for (let c = 0; c < 3; c++) s[c]! += rgb[q * 3 + c]!;
          s[3]!++;
        }
      }
    const [invented, remembered] = sums as [number[], number[]];
    expect(invented[3]).toBeGreaterThan(40);
    expect(remembered[3]).toBeGreaterThan(40);
    return Math.hypot(...[0, 1, 2].map((c) => invented[c]! / invented[3]! - remembered[c]! / remembered[3]!));
  };
  return { floor: distance((y) => Math.abs(y) < 0.05), wall: distance((y) => y > 1 && y < 5) };
}

describe('the invention continues the memory', () => {
  it('courtyard: the brick and plaster walls and the paving go on in their colours past the seam', async () => {
    const seam = await seamColourDistance(
      loadBundledScene('courtyard'),
      [0, 1.7, 8],
      -0.9,
      'a sunny courtyard',
    );
    expect(seam.wall).toBeLessThan(25);
    expect(seam.floor).toBeLessThan(25);
  });

  it('room: the walls and the floor go on in their colours past the seam', async () => {
    const seam = await seamColourDistance(loadBundledScene('room'), [-1.5, 1.6, 1.5], -1.2, 'an indoor room');
    expect(seam.wall).toBeLessThan(25);
    expect(seam.floor).toBeLessThan(25);
  });

  it('leaves no sky-coloured ring around a tree after a walk past it (memory on)', async () => {
    // Strafing 3 m past a courtyard tree in front of the brick wall uncovers wall the seed frame
    // did not see beside the crown. Measured before the continuation: 20.8 % of the 8 px band around
    // the tree (where the scene has a surface) was sky, 28 % in the last frames; with it 0.6 %.
    const scene = loadBundledScene('courtyard');
    const model = new ProceduralModel({ width: W, height: H });
    const k = model.intrinsics;
    const waypoint = (t: number, x: number) => ({
      t,
      position: [x, 1.7, 2] as [number, number, number],
      yawDeg: -26.6,
      pitchDeg: 0,
    });
    const poses = sampleTrajectory({ version: 1, waypoints: [waypoint(0, -3.5), waypoint(2, -0.5)] }, 15);
    const { frames } = await drive({ scene, model, poses, director: { memory: true, k: 7 } });
    const tree: Scene = {
      ...scene,
      objects: scene.objects.filter((o) => o.material === 'leaves' || o.material === 'bark'),
      entities: [],
    };
    const BAND = 8;
    let band = 0;
    let sky = 0;
    frames.forEach((f, i) => {
      const pose: Pose = poses[i + 1]!;
      const gt = renderScene(scene, pose, k, { timeS: (i + 1) / 15 });
      const treeOnly = renderScene(tree, pose, k, { sky: false });
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const p = y * W + x;
          if (treeOnly.depth[p]! > 0 || !(gt.depth[p]! > 0) || gt.dynamicMask[p]) continue;
          let nearTree = false;
          for (let dy = -BAND; dy <= BAND && !nearTree; dy++)
            for (let dx = -BAND; dx <= BAND && !nearTree; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              nearTree = yy >= 0 && xx >= 0 && yy < H && xx < W && treeOnly.depth[yy * W + xx]! > 0;
            }
          if (!nearTree) continue;
          band++;
          if (!(f.depth![p]! > 0)) sky++;
        }
    });
    expect(band).toBeGreaterThan(20_000);
    expect(sky / band).toBeLessThan(0.03);
  });
});
