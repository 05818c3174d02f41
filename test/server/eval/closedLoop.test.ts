import { describe, expect, it } from 'vitest';
import { closedLoop, defaultLoop, leakage } from '../../../server/eval/consistencyEval.ts';
import { loadModel } from '../../../server/models/registry.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

/**
 * The paper's closed-loop experiment on each bundled scene at 256×144 with a 1.6 s loop (48 frames).
 * Thresholds sit ~3 dB under what was measured (2026-11-24: memory on room 39.1, courtyard 31.1,
 * hall-dynamic 31.4 dB; memory off 17.6, 9.6, 14.8 dB). Standard SSIM (Gaussian 11×11, 2026-11-27):
 * memory on 0.997, 0.981, 0.999; off 0.58, 0.55, 0.53.
 */
const size = { width: 256, height: 144 };
const cases = [
  { scene: 'room', minOn: 36 },
  { scene: 'courtyard', minOn: 28 },
  { scene: 'hall-dynamic', minOn: 28 },
] as const;

describe('closed loop: the world stays the same when the player comes back', () => {
  for (const c of cases) {
    it(`${c.scene}: memory on ≥ ${c.minOn} dB and memory off clearly lower`, async () => {
      const scene = sceneNamed(c.scene);
      const trajectory = defaultLoop(scene, 1.6);
      const on = await closedLoop({
        scene,
        trajectory,
        modelName: 'procedural',
        loadModel,
        memory: true,
        k: 7,
        ...size,
      });
      const off = await closedLoop({
        scene,
        trajectory,
        modelName: 'procedural',
        loadModel,
        memory: false,
        k: 0,
        ...size,
      });
      expect(on.frames).toBe(49);
      expect(on.psnr).toBeGreaterThan(c.minOn);
      expect(on.ssim).toBeGreaterThan(0.95);
      expect(off.psnr).toBeLessThan(on.psnr - 6);
      expect(off.ssim).toBeLessThan(on.ssim - 0.2);
    });
  }

  it('moving entities leave no ghost voxels with the dynamic mask (and do without it)', async () => {
    const scene = sceneNamed('hall-dynamic');
    const loop = defaultLoop(scene, 1.6);
    const masked = await leakage(scene, loop, 'model', size);
    const unmasked = await leakage(scene, loop, 'none', size);
    expect(masked.dynamicPixels).toBeGreaterThan(1000); // entities were really in view
    expect(masked.ghostVoxels).toBe(0);
    expect(unmasked.ghostVoxels).toBeGreaterThan(500);
  });
});
