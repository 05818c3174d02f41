import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type CapturedFrame, captureFidelity, captureRevisit } from '../../../server/eval/realDataEval.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

/** The capture experiments on exact data (the room's ground truth along a short arc): the scores they must give. */
const K = intrinsicsFromFov(160, 120, 70);
const SCENE = sceneNamed('room');
const FRAMES: CapturedFrame[] = Array.from({ length: 12 }, (_v, i) => {
  const pose = poseFromYawPitch([0.1 * i, 1.5, 2 - 0.05 * i], 0.06 * i, -0.25);
  return { pose, image: renderScene(SCENE, pose, K, { includeEntities: false }) };
});

describe('the memory on captured sequences (eval --dataset)', () => {
  it('fidelity: every 4th frame held out renders back closely, with its depth', () => {
    const r = captureFidelity(FRAMES, K, 0.02);
    expect(r.fused).toBe(9);
    expect(r.rendered).toBe(3);
    expect(r.coverage).toBeGreaterThan(0.95);
    expect(r.psnr).toBeGreaterThan(26);
    expect(r.ssim).toBeGreaterThan(0.8);
    expect(r.depthErrMedian).toBeLessThan(0.01);
  });

  it('revisit: the last frames render from the first pass; a coarser memory scores lower', () => {
    const fine = captureRevisit(FRAMES, K, 0.02);
    const coarse = captureRevisit(FRAMES, K, 0.07);
    expect(fine.fused).toBe(10);
    expect(fine.rendered).toBe(2);
    expect(fine.psnr).toBeGreaterThan(coarse.psnr);
    expect(fine.coverage).toBeGreaterThan(0.8);
  });

  it('npm run eval -- --dataset refuses a bad FORMAT:DIR with the reason', async () => {
    const run = promisify(execFile);
    const failing = await run(join(process.cwd(), 'node_modules/.bin/tsx'), [
      'server/tools/eval.ts',
      '--dataset',
      'kinect:/nowhere',
    ]).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(failing?.stderr).toMatch(/--dataset must be FORMAT:DIR with FORMAT one of tum, 7scenes, generic/);
    const missing = await run(join(process.cwd(), 'node_modules/.bin/tsx'), [
      'server/tools/eval.ts',
      '--dataset',
      'tum:/nowhere',
    ]).then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(missing?.stderr).toMatch(/no folder \/nowhere/);
  }, 60_000);
});
