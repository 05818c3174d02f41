import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { placeAtSpawn } from '../../../server/io/rgbdSequence.ts';
import { parsePly } from '../../../server/memory/ply.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { psnr } from '../../../server/metrics/imageMetrics.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { spawnIn } from '../../../server/world/world.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';
import { writeDepthPng, writeJpeg } from '../../helpers/rgbdFiles.ts';

const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');
const world = (args: string[]) => run(TSX, ['server/tools/worldTool.ts', ...args]);

describe('npm run world: import and export', () => {
  it('a PLY import renders like the memory it came from, and exports back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-world-'));
    const store = join(dir, 'w.sqlite');
    const k = intrinsicsFromFov(256, 144, 75);
    const scene = sceneNamed('courtyard');
    const original = SpatialMemory.create(0.05);
    const poses = [0, 1, 2].map((i) => poseFromYawPitch([0, 1.7, 6], i * 0.8, -0.1));
    for (const p of poses) original.fuse(renderScene(scene, p, k), p, k);
    writeFileSync(join(dir, 'in.ply'), original.toPly());
    const out = await world(['import-ply', join(dir, 'in.ply'), '--world', 'from-ply', '--store', store]);
    expect(out.stdout).toMatch(new RegExp(`${original.grid.voxelCount} voxels`));
    const s = new WorldStore(store);
    const imported = s.loadMemory('from-ply', s.getWorld('from-ply')!.voxelSizeM);
    s.close();
    const a = original.render(poses[1]!, k);
    const b = imported.render(poses[1]!, k);
    expect(psnr(b.rgb, a.rgb)).toBeGreaterThan(40);
    await world(['export-ply', '--world', 'from-ply', '--out', join(dir, 'out.ply'), '--store', store]);
    expect(parsePly(readFileSync(join(dir, 'out.ply'))).count).toBe(original.grid.voxelCount);
    // Importing over an existing world is refused.
    const again = await world([
      'import-ply',
      join(dir, 'in.ply'),
      '--world',
      'from-ply',
      '--store',
      store,
    ]).catch((e: { stderr: string; code: number }) => e);
    expect((again as { code: number }).code).toBe(2);
    expect((again as { stderr: string }).stderr).toMatch(/already exists/);
  }, 60_000);

  it('an RGB-D image pair starts a world that reproduces the image from its camera', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-rgbd-'));
    const store = join(dir, 'w.sqlite');
    const k = intrinsicsFromFov(256, 144, 75);
    const pose = poseFromYawPitch([0, 1.6, 0], 0, 0);
    const gt = renderScene(sceneNamed('room'), pose, k);
    const rgbPng = new PNG({ width: k.width, height: k.height });
    for (let p = 0; p < k.width * k.height; p++) {
      rgbPng.data[p * 4] = gt.rgb[p * 3]!;
      rgbPng.data[p * 4 + 1] = gt.rgb[p * 3 + 1]!;
      rgbPng.data[p * 4 + 2] = gt.rgb[p * 3 + 2]!;
      rgbPng.data[p * 4 + 3] = 255;
    }
    writeFileSync(join(dir, 'rgb.png'), PNG.sync.write(rgbPng));
    writeDepthPng(join(dir, 'depth.png'), gt.depth, k.width, k.height, 1000);
    writeFileSync(join(dir, 'k.json'), JSON.stringify({ fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy }));
    await world([
      'import-rgbd',
      '--rgb',
      join(dir, 'rgb.png'),
      '--depth',
      join(dir, 'depth.png'),
      '--intrinsics',
      join(dir, 'k.json'),
      '--world',
      'from-rgbd',
      '--store',
      store,
    ]);
    const s = new WorldStore(store);
    const memory = s.loadMemory('from-rgbd', s.getWorld('from-rgbd')!.voxelSizeM);
    s.close();
    expect(memory.keyframes.size).toBe(1);
    const view = memory.render(pose, k);
    expect(psnr(view.rgb, gt.rgb, view.coverage)).toBeGreaterThan(30);
    expect(view.coverage.reduce((x, y) => x + y, 0) / view.coverage.length).toBeGreaterThan(0.95);
  }, 60_000);

  it('import-rgbd takes JPEG colour, intrinsics with the image size and a captured pose; it checks --world first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-rgbd2-'));
    const k = intrinsicsFromFov(128, 96, 70);
    const scene = sceneNamed('room');
    // A camera pitched 40° down, its rotation rounded as datasets store it.
    const pose = poseFromYawPitch([0.5, 1.4, 1], 0.4, -0.7);
    const gt = renderScene(scene, pose, k, { includeEntities: false });
    await writeJpeg(join(dir, 'rgb.jpg'), gt.rgb, k.width, k.height);
    writeDepthPng(join(dir, 'depth.png'), gt.depth, k.width, k.height, 1000);
    writeFileSync(
      join(dir, 'k.json'),
      JSON.stringify({ fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy, width: k.width, height: k.height }),
    );
    const r = pose.rotation.map((v) => v.toFixed(4));
    const p = pose.position;
    writeFileSync(
      join(dir, 'pose.txt'),
      `${r[0]} ${r[1]} ${r[2]} ${p[0]}\n${r[3]} ${r[4]} ${r[5]} ${p[1]}\n${r[6]} ${r[7]} ${r[8]} ${p[2]}\n0 0 0 1\n`,
    );
    const args = [
      'import-rgbd',
      '--rgb',
      join(dir, 'rgb.jpg'),
      '--depth',
      join(dir, 'depth.png'),
      '--intrinsics',
      join(dir, 'k.json'),
    ];
    // Without --world nothing is read or fused, and a fresh checkout's missing data folder is no problem.
    const store = join(dir, 'data/w.sqlite');
    const refused = await world([...args, '--store', store]).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(refused?.stderr).toMatch(/--world ID is required/);
    await world([...args, '--pose', join(dir, 'pose.txt'), '--world', 'captured', '--store', store]);
    const s = new WorldStore(store);
    const memory = s.loadMemory('captured', s.getWorld('captured')!.voxelSizeM);
    // Players appear where the capture's camera stood, looking down as it did (stored with the world).
    const spawn = s.getWorld('captured')!.spawn!;
    expect(spawn.position).toEqual(spawnIn(undefined).position);
    expect(spawn.yaw).toBe(0);
    expect(spawn.pitch).toBeCloseTo(-0.7, 3);
    s.close();
    // The camera stands at the spawn, pitched as captured: the memory renders the frame back there.
    const placed = placeAtSpawn([pose], spawnIn(undefined).position)[0]!;
    const view = memory.render(placed, k);
    expect(psnr(view.rgb, gt.rgb, view.coverage)).toBeGreaterThan(28);
    expect(view.coverage.reduce((a, b) => a + b, 0) / view.coverage.length).toBeGreaterThan(0.9);
    // Intrinsics for another image size are refused.
    writeFileSync(
      join(dir, 'k2.json'),
      JSON.stringify({ fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy, width: 640, height: 480 }),
    );
    const wrong = await world([
      ...args.slice(0, -1),
      join(dir, 'k2.json'),
      '--world',
      'other',
      '--store',
      store,
    ]).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(wrong?.stderr).toMatch(/640×480, the depth image is 128×96/);
  }, 60_000);
});
