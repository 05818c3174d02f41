import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { fitScene, inventWorld } from '../../../server/models/procedural/inventedWorld.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { STYLE_WORDS, styleFromPrompt } from '../../../server/models/procedural/style.ts';
import type { SceneShape } from '../../../server/scene/sceneFormat.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';

/**
 * The procedural model's invention follows the prompt: a seeded frame with nothing remembered (every
 * pixel invented) has the statistics its words ask for. Measured (256×144, seed 3; the ground is
 * the floor's pixels in the bottom quarter): ground RGB courtyard 157,152,139; snowy forest
 * 210,216,223; desert 193,162,111; autumn forest 135,79,36; foggy beach 192,183,161; frame mean
 * courtyard 158, forest at night 20, rainy town 62.
 */
const W = 256;
const H = 144;
const model = new ProceduralModel({ width: W, height: H, entities: false });
const k = model.intrinsics;
const pose = poseFromYawPitch([0, 1.6, 0], 0.3, -0.15);

async function invent(prompt: string): Promise<{ ground: number[]; mean: number; black: number }> {
  const view = SpatialMemory.create(0.05).render(pose, k);
  const req = { clipId: 0, poses: [pose], intrinsics: k, memoryViews: [view], references: [], preceding: [] };
  let rgb: Uint8Array = new Uint8Array(0);
  let depth: Float32Array = new Float32Array(0);
  for await (const f of model.generate({ ...req, prompt, seed: 3, timeS: 0 })) {
    rgb = f.rgb;
    depth = f.depth!;
  }
  // The ground: the bottom quarter's pixels on the floor (world height 0; the camera is at 1.6 m).
  const r = pose.rotation;
  const ground = [0, 0, 0];
  let n = 0;
  let sum = 0;
  let black = 0;
  for (let p = 0; p < W * H; p++) {
    const v = rgb[p * 3]! + rgb[p * 3 + 1]! + rgb[p * 3 + 2]!;
    sum += v;
    if (v < 30) black++;
    const d = depth[p]!;
    const row = Math.floor(p / W);
    if (row < H * 0.75 || !(d > 0)) continue;
    const worldY = 1.6 + r[3] * (((p % W) - k.cx) / k.fx) * d + r[4] * ((row - k.cy) / k.fy) * d + r[5] * d;
    if (Math.abs(worldY) > 0.02) continue;
    for (let c = 0; c < 3; c++) ground[c]! += rgb[p * 3 + c]!;
    n++;
  }
  expect(n).toBeGreaterThan(W * H * 0.05);
  return { ground: ground.map((g) => g / n), mean: sum / (W * H * 3), black };
}

describe('the procedural model follows the prompt', () => {
  it('reads place words and modifiers; unknown words fall back to the courtyard; the eval prompts keep their styles', () => {
    expect(styleFromPrompt('a snowy forest')).toMatchObject({ name: 'forest', modifiers: ['snowy'] });
    expect(styleFromPrompt('a forest at night in the rain')).toMatchObject({
      name: 'forest',
      modifiers: ['rainy', 'night'],
    });
    expect(styleFromPrompt('zxqv blorp')).toMatchObject({ name: 'courtyard', modifiers: [] });
    expect(styleFromPrompt('an indoor room')).toMatchObject({ name: 'room', indoor: true, modifiers: [] });
    expect(styleFromPrompt('an indoor hall-dynamic').name).toBe('room');
    expect(styleFromPrompt('a sunny courtyard outdoors')).toMatchObject({ name: 'courtyard', modifiers: [] });
    expect(STYLE_WORDS.places).toEqual(
      expect.arrayContaining(['forest', 'desert', 'beach', 'ruins', 'town']),
    );
    expect(STYLE_WORDS.modifiers).toEqual(['snowy', 'autumn', 'foggy', 'rainy', 'neon', 'night']);
  });

  it('six prompts, six looks: snow is white, a desert sandy, autumn orange, night dark, fog grey, rain dull', async () => {
    const plain = await invent('a sunny courtyard outdoors');
    const snowy = await invent('a snowy forest');
    expect(Math.min(...snowy.ground)).toBeGreaterThan(175);
    expect(snowy.ground[0]! + snowy.ground[1]! + snowy.ground[2]!).toBeGreaterThan(
      plain.ground[0]! + plain.ground[1]! + plain.ground[2]! + 150,
    );
    const [dr, dg, db] = (await invent('a desert')).ground as [number, number, number];
    expect(dr).toBeGreaterThan(dg);
    expect(dg).toBeGreaterThan(db);
    expect(dr - db).toBeGreaterThan(60);
    const [ar, ag, ab] = (await invent('an autumn forest')).ground as [number, number, number];
    expect(ar).toBeGreaterThan(1.3 * ag);
    expect(ag).toBeGreaterThan(1.5 * ab);
    expect((await invent('a forest at night')).mean).toBeLessThan(40);
    const fogLook = await invent('a foggy beach');
    const fog = fogLook.ground;
    expect(Math.max(...fog) - Math.min(...fog)).toBeLessThan(40);
    const rain = await invent('a rainy town');
    expect(rain.mean).toBeLessThan(plain.mean - 30);
    // Sky down to the horizon, ground up to it: no black band between them (by day).
    for (const look of [plain, snowy, fogLook, rain]) expect(look.black).toBe(0);
  });

  it('every invented prop stands on the ground: each part touches the floor or rests on a part that does', () => {
    type Box = { lo: number[]; hi: number[] };
    const bounds = (o: SceneShape): Box => {
      switch (o.type) {
        case 'box': {
          const a = (o.rotationYDeg * Math.PI) / 180;
          const [c, s] = [Math.abs(Math.cos(a)), Math.abs(Math.sin(a))];
          const h = [c * o.size[0] + s * o.size[2], o.size[1], s * o.size[0] + c * o.size[2]].map(
            (v) => v / 2,
          );
          return { lo: o.center.map((v, i) => v - h[i]!), hi: o.center.map((v, i) => v + h[i]!) };
        }
        case 'cylinder':
          return {
            lo: [o.base[0] - o.radius, o.base[1], o.base[2] - o.radius],
            hi: [o.base[0] + o.radius, o.base[1] + o.height, o.base[2] + o.radius],
          };
        case 'sphere':
          return { lo: o.center.map((v) => v - o.radius), hi: o.center.map((v) => v + o.radius) };
        case 'plane':
          throw new Error('no bounds');
      }
    };
    const touch = (a: Box, b: Box) =>
      [0, 1, 2].every((i) => a.lo[i]! <= b.hi[i]! + 0.01 && b.lo[i]! <= a.hi[i]! + 0.01);
    const prompts = [
      'a snowy forest',
      'a desert',
      'a rainy town',
      'a town at night',
      'ruins',
      'a beach',
      'a sunny courtyard outdoors',
    ];
    const kinds = new Set<string>();
    for (const prompt of prompts) {
      const style = styleFromPrompt(prompt);
      const fit = fitScene([pose], k, [], style.indoor, 7);
      const world = inventWorld(style, fit, [pose], 7, 1);
      const parts = world.objects.filter((o) => o.type !== 'plane').map((o) => ({ o, box: bounds(o) }));
      expect(parts.length, prompt).toBeGreaterThan(10);
      const standing = new Set(parts.filter((p) => p.box.lo[1]! - fit.floorY <= 0.05));
      // Parts resting on standing parts stand too (a crown on its trunk, a roof on its walls).
      for (let grown = true; grown; ) {
        grown = false;
        for (const p of parts)
          if (!standing.has(p) && [...standing].some((q) => touch(p.box, q.box))) {
            standing.add(p);
            grown = true;
          }
      }
      for (const p of parts) {
        expect(
          standing.has(p),
          `${prompt}: ${p.o.type} of ${p.o.material} at ${p.box.lo.map((v) => v.toFixed(2))}`,
        ).toBe(true);
        kinds.add(p.o.material);
      }
    }
    // Among them: trees, houses with doors, windows and roofs, lamps, fences and rocks.
    for (const m of [
      'trunk',
      'crown',
      'houseWall',
      'roof',
      'door',
      'window',
      'pole',
      'lampHead',
      'fence',
      'rock',
    ])
      expect(kinds.has(m), m).toBe(true);
  });
});
