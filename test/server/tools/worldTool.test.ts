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

describe('npm run world: edit', () => {
  it('erases a box and places a PLY in a stored world; the log lists both; bad flags change nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-edit-tool-'));
    const store = join(dir, 'w.sqlite');
    const k = intrinsicsFromFov(256, 144, 75);
    const scene = sceneNamed('courtyard');
    const original = SpatialMemory.create(0.02);
    const poses = [0, 0.8, -0.8].map((yaw) => poseFromYawPitch([0, 1.7, 7], yaw, -0.15));
    for (const p of poses) original.fuse(renderScene(scene, p, k), p, k);
    writeFileSync(join(dir, 'in.ply'), original.toPly());
    await world(['import-ply', join(dir, 'in.ply'), '--world', 'yard', '--store', store]);
    const inBox = (m: SpatialMemory, min: number[], max: number[]): number => {
      let n = 0;
      m.forEachVoxel((v) => {
        if (
          v.x >= min[0]! &&
          v.x < max[0]! &&
          v.y >= min[1]! &&
          v.y < max[1]! &&
          v.z >= min[2]! &&
          v.z < max[2]!
        )
          n++;
      });
      return n;
    };
    const load = (): SpatialMemory => {
      const s = new WorldStore(store);
      const m = s.loadMemory('yard', 0.02);
      s.close();
      return m;
    };
    const fountain = [-2.4, 0.04, -2.4, 2.4, 2.4, 2.4];
    expect(inBox(load(), fountain.slice(0, 3), fountain.slice(3))).toBeGreaterThan(2000);
    // Negative coordinates are numbers, not flags.
    const erased = await world([
      'edit',
      '--world',
      'yard',
      '--erase-box',
      ...fountain.map(String),
      '--store',
      store,
    ]);
    expect(erased.stdout).toMatch(/edit 1 \(erase\) changed \d+ voxels/);
    expect(inBox(load(), fountain.slice(0, 3), fountain.slice(3))).toBe(0);

    // A 20 x 5 x 20 block of red points (ASCII PLY), scaled 2x, its bottom middle on the paving at (3, 0, 3).
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++)
      lines.push(
        `${(i % 20) * 0.01} ${Math.floor(i / 400) * 0.05} ${(Math.floor(i / 20) % 20) * 0.01} 220 30 30`,
      );
    writeFileSync(
      join(dir, 'cube.ply'),
      `ply\nformat ascii 1.0\nelement vertex 2000\nproperty float x\nproperty float y\nproperty float z\n` +
        `property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n${lines.join('\n')}\n`,
    );
    const placed = await world([
      'edit',
      '--world',
      'yard',
      '--insert-ply',
      join(dir, 'cube.ply'),
      '--at',
      '3',
      '0',
      '3',
      '--scale',
      '2',
      '--store',
      store,
    ]);
    expect(placed.stdout).toMatch(/edit 2 \(insertPly\) changed \d+ voxels/);
    const m = load();
    let authored = 0;
    m.forEachVoxel((v) => {
      if (v.authored) {
        authored++;
        expect(v.x).toBeGreaterThan(2.7);
        expect(v.x).toBeLessThan(3.3);
        expect(v.y).toBeGreaterThanOrEqual(-0.02);
        expect(v.y).toBeLessThan(0.45);
      }
    });
    expect(authored).toBeGreaterThan(500);
    // Given 5 m up, --on-surface brings it down onto the paving.
    await world([
      'edit',
      '--world',
      'yard',
      '--insert-ply',
      join(dir, 'cube.ply'),
      '--at',
      '-1',
      '5',
      '3.5',
      '--on-surface',
      '--store',
      store,
    ]);
    let landed = 0;
    load().forEachVoxel((v) => {
      if (v.authored && v.x < -0.5) {
        landed++;
        expect(v.y).toBeLessThan(0.5);
      }
    });
    expect(landed).toBeGreaterThanOrEqual(400);
    const log = await world(['edits', '--world', 'yard', '--store', store]);
    expect(
      log.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[3]),
    ).toEqual(['erase', 'insertPly', 'insertPly']);

    const refused = async (args: string[], why: RegExp): Promise<void> => {
      const r = await world(['edit', '--world', 'yard', ...args, '--store', store]).catch(
        (e: { stderr: string; code: number }) => e,
      );
      expect((r as { code: number }).code).toBe(2);
      expect((r as { stderr: string }).stderr).toMatch(why);
    };
    await refused(['--erase-box', '0', '0', '0', '1', '1'], /--erase-box needs 6 numbers/);
    await refused(['--erase-box', '0', '0', '0', '20', '1', '1'], /at most 8 m/);
    await refused(['--recolor-box', '0', '0', '0', '1', '1', '1'], /needs --color/);
    await refused(['--insert-ply', join(dir, 'cube.ply')], /needs --at/);
    await refused([], /exactly one of/);
    const after = await world(['edits', '--world', 'yard', '--store', store]);
    expect(after.stdout).toBe(log.stdout);
  }, 90_000);
});
