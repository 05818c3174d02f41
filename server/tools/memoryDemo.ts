import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { type Pose, poseLookAt } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { hstack, writeRgbPng } from '../io/png.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { drawMarker, drawPath } from '../memory/topDownMap.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { psnr } from '../metrics/imageMetrics.ts';
import { modelIntrinsics } from '../models/worldModel.ts';
import { BUNDLED_SCENES, loadBundledScene, loadSceneFile } from '../scene/loadScene.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { Scene } from '../scene/sceneFormat.ts';

const USAGE = `usage: npm run demo:memory -- [--scene room|courtyard|hall-dynamic|FILE.json] [--voxel METRES] [--frames N] [--out DIR]

Walks a closed loop through a ground-truth scene, fuses every frame into the spatial memory
(moving entities masked out), keeps keyframes where overlap is low, and writes what it built:
memory.ply (open it in MeshLab, CloudCompare or Open3D), memory.snapshot, views.png
(ground truth | memory at the scene's viewpoints) and map.png (the memory from above, with the path).`;

interface DemoOptions {
  readonly scene: Scene;
  readonly voxelSizeM: number;
  readonly frames: number;
  readonly outDir: string;
}

function parseOptions(argv: string[]): DemoOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scene: { type: 'string', default: 'room' },
      voxel: { type: 'string', default: String(DEFAULT_VOXEL_SIZE_M) },
      frames: { type: 'string', default: '60' },
      out: { type: 'string', default: 'out/memory-demo' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const voxelSizeM = Number(values.voxel);
  validateVoxelSize(voxelSizeM);
  const frames = Number(values.frames);
  if (!Number.isInteger(frames) || frames < 2 || frames > 100_000) {
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `--frames must be an integer in 2..100000, got "${values.frames}"`,
    );
  }
  const name = values.scene;
  const scene = (BUNDLED_SCENES as readonly string[]).includes(name)
    ? loadBundledScene(name as (typeof BUNDLED_SCENES)[number])
    : loadSceneFile(resolve(name));
  if (scene.viewpoints.length < 2) {
    throw new SpatiaError('SCENE_FORMAT', `scene "${scene.name}" needs at least 2 viewpoints to walk a loop`);
  }
  return { scene, voxelSizeM, frames, outDir: resolve(values.out) };
}

/** A closed loop through the scene's viewpoints, eye and target interpolated linearly. */
function loopPoses(scene: Scene, frames: number): Pose[] {
  const vps = [...scene.viewpoints, scene.viewpoints[0]!];
  const poses: Pose[] = [];
  for (let i = 0; i < frames; i++) {
    const t = (i / (frames - 1)) * (vps.length - 1);
    const a = vps[Math.min(vps.length - 2, Math.floor(t))]!;
    const b = vps[Math.min(vps.length - 1, Math.floor(t) + 1)]!;
    const f = t - Math.min(vps.length - 2, Math.floor(t));
    const lerp = (p: Vec3, q: Vec3): Vec3 => [
      p[0] + (q[0] - p[0]) * f,
      p[1] + (q[1] - p[1]) * f,
      p[2] + (q[2] - p[2]) * f,
    ];
    poses.push(poseLookAt(lerp(a.eye, b.eye), lerp(a.target, b.target)));
  }
  return poses;
}

function main(): void {
  let opts: DemoOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  const { scene, voxelSizeM, frames, outDir } = opts;
  const k = modelIntrinsics();
  const memory = SpatialMemory.create(voxelSizeM);
  const poses = loopPoses(scene, frames);
  process.stdout.write(
    `Spatia memory demo: scene "${scene.name}", ${frames} frames at ${k.width}×${k.height}, voxel ${voxelSizeM} m\n`,
  );

  const bar = new SingleBar({
    format:
      'fusing [{bar}] {value}/{total} frames | {voxels} voxels | {keyframes} keyframes | fuse {fuseMs} ms',
    hideCursor: true,
  });
  bar.start(frames, 0, { voxels: 0, keyframes: 0, fuseMs: '-' });
  let fuseTotalMs = 0;
  poses.forEach((pose, i) => {
    const frame = renderScene(scene, pose, k, { timeS: i / 10 });
    const t0 = performance.now();
    memory.fuse(frame, pose, k, { excludeMask: frame.dynamicMask });
    const ms = performance.now() - t0;
    fuseTotalMs += ms;
    // Keep a keyframe where the view overlaps the existing keyframes little (IoU < 0.5).
    const view = memory.render(pose, k);
    const best = memory.retrieve(pose, k, { k: 1, minIoU: 0 }, view)[0];
    if (!best || best.iou < 0.5) memory.addKeyframe(frame, pose, k, view);
    bar.update(i + 1, {
      voxels: memory.voxelCount,
      keyframes: memory.keyframes.size,
      fuseMs: ms.toFixed(1),
    });
  });
  bar.stop();

  if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true });
  const rows: string[] = [];
  const sheet: Uint8Array[] = [];
  scene.viewpoints.forEach((vp, i) => {
    const pose = poseLookAt(vp.eye, vp.target);
    const gt = renderScene(scene, pose, k, { includeEntities: false });
    const view = memory.render(pose, k);
    const mask = new Uint8Array(gt.depth.length);
    let covered = 0;
    let inRange = 0;
    for (let p = 0; p < mask.length; p++) {
      mask[p] = gt.depth[p]! > 0 && gt.depth[p]! <= 20 ? 1 : 0;
      inRange += mask[p]!;
      covered += mask[p]! & view.coverage[p]!;
    }
    rows.push(
      `  viewpoint ${i}: PSNR ${psnr(view.rgb, gt.rgb, mask).toFixed(2)} dB, coverage ${((100 * covered) / inRange).toFixed(1)}%`,
    );
    if (i < 3) sheet.push(hstack([gt.rgb, view.rgb], k.width, k.height));
  });
  // Stack the first viewpoints' (ground truth | memory) pairs vertically.
  const views = new Uint8Array(sheet.reduce((a, s) => a + s.length, 0));
  let offset = 0;
  for (const s of sheet) {
    views.set(s, offset);
    offset += s.length;
  }
  writeRgbPng(join(outDir, 'views.png'), views, k.width * 2, k.height * sheet.length);
  const map = memory.topDownMap(40);
  drawPath(
    map,
    poses.map((p) => p.position),
    [255, 60, 60],
  );
  for (const kf of memory.keyframes.all()) drawMarker(map, kf.pose.position, 2, [255, 220, 0]);
  writeRgbPng(join(outDir, 'map.png'), map.rgb, map.width, map.height);
  writeFileSync(join(outDir, 'memory.ply'), memory.toPly());
  writeFileSync(join(outDir, 'memory.snapshot'), memory.save());

  const s = memory.stats();
  process.stdout.write(
    [
      `memory: ${s.voxels} voxels in ${s.chunks} chunks, ${(s.bytes / 2 ** 20).toFixed(1)} MiB (${(s.bytes / s.voxels).toFixed(1)} B/voxel), ${s.keyframes} keyframes`,
      `fuse: ${(fuseTotalMs / frames).toFixed(2)} ms per frame on average`,
      'memory vs ground truth (static scene) at the scene viewpoints:',
      ...rows,
      `wrote ${join(outDir, 'memory.ply')}, memory.snapshot, views.png, map.png`,
      '',
    ].join('\n'),
  );
}

main();
