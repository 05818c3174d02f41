import { describe, expect, it } from 'vitest';
import { psnr, ssim } from '../../../server/metrics/imageMetrics.ts';

const W = 37;
const H = 23;

/** Two deterministic pairs (integer formulas), the same arrays the scikit-image reference was computed on. */
function pairs(): { noisy: [Uint8Array, Uint8Array]; smooth: [Uint8Array, Uint8Array] } {
  const a = new Uint8Array(W * H * 3);
  const b = new Uint8Array(W * H * 3);
  const a2 = new Uint8Array(W * H * 3);
  const b2 = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++)
    for (let c = 0; c < 3; c++) {
      const v = (p * 37 + c * 91 + ((p * p) % 251)) % 256;
      a[p * 3 + c] = v;
      b[p * 3 + c] = Math.min(255, Math.max(0, v + ((p * 7919 + c * 31) % 41) - 20));
      const x = p % W;
      const y = Math.floor(p / W);
      const s = (x * 5 + y * 3 + c * 40) % 256;
      a2[p * 3 + c] = s;
      b2[p * 3 + c] = Math.min(255, s + (x % 3));
    }
  return { noisy: [a, b], smooth: [a2, b2] };
}

describe('image metrics', () => {
  /**
   * Reference values from scikit-image 0.19.3 (Debian's python3-skimage):
   * structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
   * use_sample_covariance=False, data_range=255) on the same arrays (H × W × 3, uint8).
   */
  it('computes SSIM as scikit-image does (Gaussian 11×11, σ 1.5, per channel)', () => {
    const { noisy, smooth } = pairs();
    expect(ssim(noisy[0], noisy[1], W, H)).toBeCloseTo(0.9872699092875493, 10);
    expect(ssim(smooth[0], smooth[1], W, H)).toBeCloseTo(0.9971399535621485, 10);
    expect(ssim(noisy[0], noisy[0], W, H)).toBeCloseTo(1, 12);
  });

  it('with a mask, counts only pixels whose window is wholly unmasked', () => {
    const { noisy } = pairs();
    const mask = new Uint8Array(W * H).fill(1);
    // Spoil the right half of b, masked out: SSIM over the left part is near 1 against a copy.
    const b = noisy[0].slice();
    for (let y = 0; y < H; y++)
      for (let x = 20; x < W; x++) {
        mask[y * W + x] = 0;
        for (let c = 0; c < 3; c++) b[(y * W + x) * 3 + c] = 255 - b[(y * W + x) * 3 + c]!;
      }
    expect(ssim(noisy[0], b, W, H, mask)).toBeCloseTo(1, 12);
    expect(ssim(noisy[0], b, W, H)).toBeLessThan(0.5);
    // No pixel whose window is unmasked: NaN, not a number made up.
    expect(ssim(noisy[0], b, W, H, new Uint8Array(W * H))).toBeNaN();
    expect(psnr(noisy[0], b, mask)).toBe(Number.POSITIVE_INFINITY);
  });
});
