import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import { buildConditioning, COND_CHANNELS, MAX_DEPTH_M } from '../../server/models/onnx/conditioning.ts';
import { inventWorld } from '../../server/models/procedural/inventedWorld.ts';
import { styleFromPrompt } from '../../server/models/procedural/style.ts';
import { type ConditioningFrame, modelIntrinsics } from '../../server/models/worldModel.ts';
import { BUNDLED_SCENES, loadBundledScene } from '../../server/scene/loadScene.ts';
import { renderScene } from '../../server/scene/rayCaster.ts';
import type { Scene } from '../../server/scene/sceneFormat.ts';
import { type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import { mulberry32 } from '../../shared/math/random.ts';

/**
 * Training data for the reference ONNX denoiser, rendered by the project's own worlds (the bundled
 * scenes and procedurally invented ones): per sample the conditioning the model sees at inference
 * (conditioning.ts: memory view, warped references, warped preceding frame) and the target frame
 * (RGB + normalised depth), all uint8, channels-first. Writes DIR/samples.u8 and DIR/meta.json.
 */
const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '1500' },
    out: { type: 'string', default: 'out/train' },
    width: { type: 'string', default: '128' },
    height: { type: 'string', default: '72' },
    seed: { type: 'string', default: '7' },
  },
});
const N = Number(values.samples);
const W = Number(values.width);
const H = Number(values.height);
const k = modelIntrinsics(W, H);
const rand = mulberry32(Number(values.seed));
const r = (a: number, b: number): number => a + (b - a) * rand();
const PROMPTS = ['a forest', 'a desert', 'a snowy field', 'a dungeon', 'an indoor room', 'a sunny courtyard'];

function inventedScene(i: number): Scene {
  const style = styleFromPrompt(PROMPTS[i % PROMPTS.length]!);
  const fit = {
    floorY: 0,
    room: style.indoor
      ? { minX: -r(4, 7), maxX: r(4, 7), minZ: -r(4, 7), maxZ: r(4, 7), ceilingY: r(2.6, 3.5) }
      : undefined,
    samples: 0,
    shownEmpty: new Map(),
    walls: [],
  };
  return inventWorld(style, fit, [poseFromYawPitch([0, 1.6, 0], 0, 0)], 1000 + i, 77 + i);
}

const scenes: Scene[] = [
  ...BUNDLED_SCENES.map((n) => loadBundledScene(n)),
  ...Array.from({ length: 24 }, (_, i) => inventedScene(i)),
];
const out = resolve(values.out);
mkdirSync(out, { recursive: true });
const fd = openSync(join(out, 'samples.u8'), 'w');
const n = W * H;
const CH = COND_CHANNELS + 4;
const buf = new Uint8Array(CH * n);
const bar = new SingleBar({ format: 'dataset [{bar}] {value}/{total} samples | ETA {eta_formatted}' });
bar.start(N, 0);
const jitter = (p: Pose, yaw: number, t: number, rot: number): Pose => {
  const [x, y, z] = p.position;
  return poseFromYawPitch([x + r(-t, t), y + r(-0.1, 0.1), z + r(-t, t)], yaw + r(-rot, rot), r(-0.15, 0.1));
};
const staticDepth = (f: { depth: Float32Array; dynamicMask: Uint8Array }): Float32Array =>
  f.depth.map((d, p) => (f.dynamicMask[p] ? 0 : d));

for (let s = 0; s < N; s++) {
  const sceneIndex = s % scenes.length;
  const scene = scenes[sceneIndex]!;
  const base = sceneIndex < BUNDLED_SCENES.length ? scene.spawn.position : [0, 1.6, 0];
  const yaw = r(-Math.PI, Math.PI);
  const target = poseFromYawPitch(
    [base[0]! + r(-2, 2), 1.5 + r(0, 0.3), base[2]! + r(-2, 2)],
    yaw,
    r(-0.15, 0.1),
  );
  const timeS = r(0, 30);
  const gt = renderScene(scene, target, k, { timeS });
  const memory = SpatialMemory.create(0.05);
  const mode = rand();
  const memoryViews = mode < 0.15 ? 0 : 1 + Math.floor(rand() * 3);
  for (let m = 0; m < memoryViews; m++) {
    const p = jitter(target, yaw, 1.2, 1.0);
    const f = renderScene(scene, p, k, { timeS });
    memory.fuse(f, p, k, { excludeMask: f.dynamicMask });
  }
  const view = memory.render(target, k);
  const preceding: ConditioningFrame[] = [];
  if (rand() < 0.8) {
    const p = jitter(target, yaw, 0.08, 0.08);
    const f = renderScene(scene, p, k, { timeS: timeS - 1 / 30 });
    preceding.push({ pose: p, intrinsics: k, rgb: f.rgb, depth: staticDepth(f) });
  }
  const references: ConditioningFrame[] = [];
  if (rand() < 0.6) {
    const p = jitter(target, yaw, 1.5, 0.6);
    const f = renderScene(scene, p, k, { timeS });
    references.push({ pose: p, intrinsics: k, rgb: f.rgb, depth: staticDepth(f) });
  }
  const cond = buildConditioning(target, k, view, references, preceding);
  for (let i = 0; i < COND_CHANNELS * n; i++) buf[i] = Math.round(cond[i]! * 255);
  const t0 = COND_CHANNELS * n;
  for (let p = 0; p < n; p++) {
    buf[t0 + p] = gt.rgb[p * 3]!;
    buf[t0 + n + p] = gt.rgb[p * 3 + 1]!;
    buf[t0 + 2 * n + p] = gt.rgb[p * 3 + 2]!;
    buf[t0 + 3 * n + p] = Math.round((Math.min(gt.depth[p]!, MAX_DEPTH_M) / MAX_DEPTH_M) * 255);
  }
  writeSync(fd, buf);
  bar.increment();
}
closeSync(fd);
bar.stop();
writeFileSync(
  join(out, 'meta.json'),
  JSON.stringify({
    samples: N,
    width: W,
    height: H,
    condChannels: COND_CHANNELS,
    targetChannels: 4,
    maxDepthM: MAX_DEPTH_M,
  }),
);
process.stdout.write(`wrote ${N} samples to ${out}\n`);
