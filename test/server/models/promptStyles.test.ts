import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { fitScene, inventWorld } from '../../../server/models/procedural/inventedWorld.ts';
import { ProceduralModel } from '../../../server/models/procedural/proceduralModel.ts';
import { STYLE_WORDS, styleFromPrompt } from '../../../server/models/procedural/style.ts';
import type { SceneShape } from '../../../server/scene/sceneFormat.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';

/**
 * The procedural model's invention follows the prompt: a seeded frame with nothing remembered (every
 * pixel invented) has the statistics its words ask for. Measured (256×144, seed 3): ground RGB
 * courtyard 141,130,115; snowy forest 188,198,197; desert 190,160,110; autumn forest 126,80,34;
 * frame mean courtyard 158, forest at night 20, rainy town 99; foggy beach ground 191,182,160.
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
  // The ground: the bottom quarter's pixels with a surface.
  const ground = [0, 0, 0];
  let n = 0;
  let sum = 0;
  let black = 0;
  for (let p = 0; p < W * H; p++) {
    const v = rgb[p * 3]! + rgb[p * 3 + 1]! + rgb[p * 3 + 2]!;
    sum += v;
    if (v < 30) black++;
    if (Math.floor(p / W) < H * 0.75 || !(depth[p]! > 0)) continue;
    for (let c = 0; c < 3; c++) ground[c]! += rgb[p * 3 + c]!;
    n++;
  }
  expect(n).toBeGreaterThan(W * H * 0.15);
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

  it('every invented prop stands on the ground (a tree on its trunk)', () => {
    const lowest = (o: SceneShape): number =>
      o.type === 'box'
        ? o.center[1] - o.size[1] / 2
        : o.type === 'cylinder'
          ? o.base[1]
          : o.type === 'sphere'
            ? o.center[1] - o.radius
            : Number.NaN;
    for (const prompt of ['a snowy forest', 'a desert', 'a rainy town', 'a sunny courtyard outdoors']) {
      const style = styleFromPrompt(prompt);
      const fit = fitScene([pose], k, [], style.indoor, 7);
      const world = inventWorld(style, fit, [pose], 7, 1);
      const props = world.objects.filter((o) => o.type !== 'plane');
      expect(props.length, prompt).toBeGreaterThan(10);
      for (const o of props) {
        if (o.material === 'crown' && o.type === 'sphere') {
          // A crown rests on a trunk that stands on the ground under it.
          const trunk = props.find(
            (t) =>
              t.type === 'cylinder' &&
              t.material === 'trunk' &&
              t.base[0] === o.center[0] &&
              t.base[2] === o.center[2],
          );
          expect(trunk, prompt).toBeDefined();
          if (trunk?.type === 'cylinder') expect(lowest(o)).toBeLessThan(trunk.base[1] + trunk.height);
          continue;
        }
        expect(lowest(o) - fit.floorY, `${prompt}: ${o.type}`).toBeLessThanOrEqual(0.05);
      }
    }
  });
});
