import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  loadRgbdFrame,
  placeAtSpawn,
  readSequence,
  type SequenceFormat,
} from '../../../server/io/rgbdSequence.ts';
import { psnr } from '../../../server/metrics/imageMetrics.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { spawnIn } from '../../../server/world/world.ts';
import { type Intrinsics, intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import {
  type Mat3,
  multiplyMat3,
  orthonormalized,
  type Pose,
  poseFromYawPitch,
  ROTATION_REPAIR_TOLERANCE,
  rotationFromQuaternion,
} from '../../../shared/camera/pose.ts';
import { expectCode } from '../../helpers/expectCode.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';
import { writeDepthPng, writeJpeg } from '../../helpers/rgbdFiles.ts';

/**
 * Captured RGB-D sequences: fixtures written here in each format from the room's ground truth
 * (poses in each dataset's own world and rounding), imported with `npm run world --
 * import-sequence`, and the shared TUM capture where present.
 */
const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');
const world = (args: string[]) => run(TSX, ['server/tools/worldTool.ts', ...args]);
const TUM_DIR = join(process.cwd(), '../shared/data/tum-fr3-cabinet');

const K: Intrinsics = intrinsicsFromFov(160, 120, 70);
const SCENE = sceneNamed('room');
const POSES: Pose[] = [0, 1, 2, 3].map((i) => poseFromYawPitch([0.3 * i, 1.5, 2 - 0.2 * i], 0.25 * i, -0.3));
/** Spatia's world from each format's (the inverse, a transpose, turns Spatia poses into theirs). */
const TO_SPATIA: Record<SequenceFormat, Mat3> = {
  tum: [1, 0, 0, 0, 0, 1, 0, -1, 0],
  '7scenes': [1, 0, 0, 0, -1, 0, 0, 0, -1],
  generic: [1, 0, 0, 0, 1, 0, 0, 0, 1],
};
const transpose = (m: Mat3): Mat3 => [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
const apply = (m: Mat3, v: readonly number[]): number[] =>
  [0, 1, 2].map((i) => m[i * 3]! * v[0]! + m[i * 3 + 1]! * v[1]! + m[i * 3 + 2]! * v[2]!);

/** A rotation's quaternion (x, y, z, w), rounded to 4 decimals as TUM's files are. */
function quaternion(r: Mat3): number[] {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = r;
  const w = Math.sqrt(Math.max(0, 1 + m00 + m11 + m22)) / 2;
  const x = Math.sqrt(Math.max(0, 1 + m00 - m11 - m22)) / 2;
  const y = Math.sqrt(Math.max(0, 1 - m00 + m11 - m22)) / 2;
  const z = Math.sqrt(Math.max(0, 1 - m00 - m11 + m22)) / 2;
  const q = [x * Math.sign(m21 - m12 || 1), y * Math.sign(m02 - m20 || 1), z * Math.sign(m10 - m01 || 1), w];
  return q.map((v) => Math.round(v * 1e4) / 1e4);
}

const matrixText = (p: { rotation: readonly number[]; position: readonly number[] }): string =>
  `${[0, 1, 2]
    .map((i) => `${p.rotation[i * 3]} ${p.rotation[i * 3 + 1]} ${p.rotation[i * 3 + 2]} ${p.position[i]}`)
    .join('\n')}\n0 0 0 1\n`;

async function writeFrame(colorPath: string, depthPath: string, i: number, unitsPerM: number): Promise<void> {
  const gt = renderScene(SCENE, POSES[i]!, K, { includeEntities: false });
  await writeJpeg(colorPath, gt.rgb, K.width, K.height);
  writeDepthPng(depthPath, gt.depth, K.width, K.height, unitsPerM);
}

/** The room's ground truth at POSES in a format's layout, poses in its world. */
async function writeFixture(format: SequenceFormat, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const toTheirs = transpose(TO_SPATIA[format]);
  const theirs = POSES.map((p) => ({
    rotation: multiplyMat3(toTheirs, p.rotation),
    position: apply(toTheirs, p.position),
  }));
  if (format === 'tum') {
    mkdirSync(join(dir, 'rgb'));
    mkdirSync(join(dir, 'depth'));
    const rgb = ['# colour images'];
    const depth = ['# depth maps'];
    const truth = ['# timestamp tx ty tz qx qy qz qw'];
    for (let i = 0; i < POSES.length; i++) {
      const t = 1000 + i * 0.5;
      await writeFrame(join(dir, `rgb/${t}.jpg`), join(dir, `depth/${t}.png`), i, 5000);
      rgb.push(`${t.toFixed(4)} rgb/${t}.jpg`);
      depth.push(`${(t + 0.005).toFixed(4)} depth/${t}.png`);
      const q = quaternion(theirs[i]!.rotation as Mat3);
      truth.push(
        `${(t - 0.003).toFixed(4)} ${theirs[i]!.position.map((v) => v.toFixed(4)).join(' ')} ${q.join(' ')}`,
      );
    }
    // A colour frame with no depth or pose near it in time.
    rgb.push('2000.0000 rgb/orphan.jpg');
    writeFileSync(join(dir, 'rgb.txt'), `${rgb.join('\n')}\n`);
    writeFileSync(join(dir, 'depth.txt'), `${depth.join('\n')}\n`);
    writeFileSync(join(dir, 'groundtruth.txt'), `${truth.join('\n')}\n`);
    writeFileSync(
      join(dir, 'k.json'),
      JSON.stringify({ fx: K.fx, fy: K.fy, cx: K.cx, cy: K.cy, width: K.width, height: K.height }),
    );
    return;
  }
  for (let i = 0; i < POSES.length; i++) {
    const name = format === '7scenes' ? `frame-${String(i).padStart(6, '0')}` : `view${i}`;
    await writeFrame(
      join(dir, `${name}.color.${format === '7scenes' ? 'png' : 'jpg'}`),
      join(dir, `${name}.depth.png`),
      i,
      1000,
    );
    writeFileSync(join(dir, `${name}.pose.txt`), matrixText(theirs[i]!));
  }
  if (format === 'generic')
    writeFileSync(
      join(dir, 'intrinsics.json'),
      JSON.stringify({
        fx: K.fx,
        fy: K.fy,
        cx: K.cx,
        cy: K.cy,
        width: K.width,
        height: K.height,
        depthScale: 1000,
      }),
    );
  else writeFileSync(join(dir, 'k.json'), JSON.stringify({ fx: K.fx, fy: K.fy, cx: K.cx, cy: K.cy }));
}

describe('captured RGB-D sequences', () => {
  it('repairs rotations rounded by datasets and refuses broken ones with INVALID_POSE', () => {
    const r = POSES[1]!.rotation;
    const rounded = r.map((v) => Math.round(v * 1e4) / 1e4);
    const repaired = orthonormalized(rounded);
    for (let i = 0; i < 9; i++) expect(Math.abs(repaired[i]! - r[i]!)).toBeLessThan(2e-4);
    expectCode(
      () => orthonormalized(r.map((v) => v * (1 + 3 * ROTATION_REPAIR_TOLERANCE))),
      'INVALID_POSE',
      /from orthonormal/,
    );
    expectCode(
      () => orthonormalized([...r.slice(0, 6), ...r.slice(6).map((v) => -v)]),
      'INVALID_POSE',
      /reflection/,
    );
    expectCode(() => rotationFromQuaternion(0, 0, 0, 1.5), 'INVALID_POSE', /norm 1.5/);
  });

  for (const format of ['tum', '7scenes', 'generic'] as const)
    it(`reads ${format}: poses in Spatia's conventions, frames decoded (JPEG or PNG colour), and imports a walkable world`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `spatia-${format}-`));
      await writeFixture(format, join(dir, 'seq'));
      const kFile = format === 'generic' ? undefined : join(dir, 'seq/k.json');
      const seq = readSequence(
        join(dir, 'seq'),
        format,
        kFile ? JSON.parse(readFileSync(kFile, 'utf8')) : undefined,
      );
      expect(seq.frames.length).toBe(POSES.length);
      expect(seq.unmatched).toBe(format === 'tum' ? 1 : 0);
      seq.frames.forEach((f, i) => {
        for (let j = 0; j < 9; j++)
          expect(Math.abs(f.pose.rotation[j]! - POSES[i]!.rotation[j]!)).toBeLessThan(2e-4);
        for (let j = 0; j < 3; j++)
          expect(Math.abs(f.pose.position[j]! - POSES[i]!.position[j]!)).toBeLessThan(1e-4);
      });
      const frame = await loadRgbdFrame(
        seq.frames[2]!.colorPath,
        seq.frames[2]!.depthPath,
        seq.intrinsics,
        seq.depthScale,
        seq.invalidDepth,
      );
      const gt = renderScene(SCENE, POSES[2]!, K, { includeEntities: false });
      expect(psnr(frame.rgb, gt.rgb)).toBeGreaterThan(30);
      let depthErr = 0;
      for (let p = 0; p < gt.depth.length; p++)
        depthErr = Math.max(depthErr, Math.abs(frame.depth[p]! - gt.depth[p]!));
      expect(depthErr).toBeLessThan(format === 'tum' ? 1.5e-4 : 6e-4);

      // The CLI: a fresh folder for the store, the world's first camera at the spawn.
      const store = join(dir, 'no-such-folder/w.sqlite');
      const out = await world([
        'import-sequence',
        join(dir, 'seq'),
        '--format',
        format,
        '--world',
        `imported-${format}`,
        '--store',
        store,
        ...(kFile ? ['--intrinsics', kFile] : []),
      ]);
      expect(out.stdout).toMatch(/importing 4 of 4 frames/);
      const s = new WorldStore(store);
      const memory = s.loadMemory(`imported-${format}`, s.getWorld(`imported-${format}`)!.voxelSizeM);
      s.close();
      expect(memory.keyframes.size).toBeGreaterThan(0);
      const placed = placeAtSpawn(POSES, spawnIn(undefined).position);
      expect(placed[0]!.position).toEqual(spawnIn(undefined).position);
      // Heading along -z, pitch as captured.
      expect(placed[0]!.rotation[2]).toBeCloseTo(0, 6);
      expect(placed[0]!.rotation[5]).toBeCloseTo(POSES[0]!.rotation[5], 6);
      for (const i of [0, 3]) {
        const view = memory.render(placed[i]!, K);
        const truth = renderScene(SCENE, POSES[i]!, K, { includeEntities: false });
        expect(psnr(view.rgb, truth.rgb, view.coverage)).toBeGreaterThan(24);
        expect(view.coverage.reduce((a, b) => a + b, 0) / view.coverage.length).toBeGreaterThan(0.9);
      }
    }, 60_000);

  it('refuses broken sequences with a coded error that names the file, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-broken-'));
    await writeFixture('7scenes', join(dir, 'seq'));
    writeFileSync(join(dir, 'seq/frame-000001.pose.txt'), '1 0 0 0\n0 2 0 0\n0 0 1 0\n0 0 0 1\n');
    expectCode(
      () => readSequence(join(dir, 'seq'), '7scenes'),
      'INVALID_POSE',
      /frame-000001\.pose\.txt rotation is .* from orthonormal/,
    );
    writeFileSync(join(dir, 'seq/frame-000001.pose.txt'), '1 0 0 0\n0 1 0 0\n');
    expectCode(
      () => readSequence(join(dir, 'seq'), '7scenes'),
      'INVALID_ARGUMENT',
      /frame-000001\.pose\.txt: expected 16 numbers/,
    );
    expectCode(() => readSequence(join(dir, 'nothing-here'), 'tum'), 'INVALID_ARGUMENT', /no folder/);
    expectCode(
      () => readSequence(join(dir, 'seq'), 'tum'),
      'INVALID_ARGUMENT',
      /neither rgb\.txt nor truth_cam_poses\.txt/,
    );
    const store = join(dir, 'w.sqlite');
    const failing = await world([
      'import-sequence',
      join(dir, 'seq'),
      '--format',
      '7scenes',
      '--world',
      'broken',
      '--store',
      store,
    ]).then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(failing?.code).not.toBe(0);
    expect(failing?.stderr).toMatch(/frame-000001\.pose\.txt/);
    // No --world: refused before anything is read.
    const noWorld = await world([
      'import-sequence',
      join(dir, 'seq'),
      '--format',
      '7scenes',
      '--store',
      store,
    ]).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(noWorld?.stderr).toMatch(/--world ID is required/);
    const s = new WorldStore(store);
    expect(s.listWorlds()).toEqual([]);
    s.close();
  }, 60_000);

  it.runIf(existsSync(TUM_DIR))(
    'imports the shared TUM capture: 58 real frames, the first camera pitched down as captured',
    async () => {
      const seq = readSequence(TUM_DIR, 'tum');
      expect(seq.frames.length).toBe(58);
      expect(seq.intrinsics).toMatchObject({
        fx: 535.4,
        fy: 539.2,
        cx: 320.1,
        cy: 247.6,
        width: 640,
        height: 480,
      });
      const placed = placeAtSpawn(
        seq.frames.map((f) => f.pose),
        spawnIn(undefined).position,
      );
      // The README: the camera looks ~40° down at the cabinet and floor.
      const pitch = (Math.asin(placed[0]!.rotation[5]) * 180) / Math.PI;
      expect(pitch).toBeLessThan(-30);
      expect(pitch).toBeGreaterThan(-55);
      const dir = mkdtempSync(join(tmpdir(), 'spatia-tum-'));
      const store = join(dir, 'w.sqlite');
      await world([
        'import-sequence',
        TUM_DIR,
        '--format',
        'tum',
        '--every',
        '3',
        '--world',
        'cabinet',
        '--store',
        store,
      ]);
      const s = new WorldStore(store);
      const memory = s.loadMemory('cabinet', s.getWorld('cabinet')!.voxelSizeM);
      s.close();
      // A frame between the imported ones (every 3rd), rendered from the memory.
      const f = seq.frames[1]!;
      const truth = await loadRgbdFrame(f.colorPath, f.depthPath, seq.intrinsics, seq.depthScale);
      const view = memory.render(placed[1]!, seq.intrinsics);
      const covered = view.coverage.reduce((a, b) => a + b, 0) / view.coverage.length;
      const db = psnr(view.rgb, truth.rgb, view.coverage);
      console.log(
        `TUM fr3/cabinet, frame 1 held out: ${(covered * 100).toFixed(1)} % covered, ${db.toFixed(2)} dB`,
      );
      expect(covered).toBeGreaterThan(0.85);
      expect(db).toBeGreaterThan(16);
    },
    120_000,
  );
});
