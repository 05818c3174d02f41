import { check } from '../../shared/errors.ts';

/**
 * PSNR in dB between two packed RGB images over the pixels where `mask` is non-zero (all pixels
 * when omitted). Identical images give Infinity; an empty mask gives NaN.
 */
export function psnr(a: Uint8Array, b: Uint8Array, mask?: Uint8Array): number {
  check(
    a.length === b.length && a.length % 3 === 0,
    'BUFFER_SIZE',
    `psnr needs two RGB images of one size, got ${a.length} and ${b.length}`,
  );
  check(
    mask === undefined || mask.length * 3 === a.length,
    'BUFFER_SIZE',
    'psnr mask must have one value per pixel',
  );
  let se = 0;
  let count = 0;
  for (let p = 0, n = a.length / 3; p < n; p++) {
    if (mask !== undefined && mask[p] === 0) continue;
    for (let c = 0; c < 3; c++) {
      const d = a[p * 3 + c]! - b[p * 3 + c]!;
      se += d * d;
    }
    count += 3;
  }
  if (count === 0) return Number.NaN;
  const mse = se / count;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

/** SSIM's Gaussian window: σ 1.5 truncated at 3.5σ (11 taps), as scikit-image and the paper use. */
const SSIM_SIGMA = 1.5;
const SSIM_RADIUS = Math.floor(3.5 * SSIM_SIGMA + 0.5);
const SSIM_WEIGHTS = (() => {
  const w = Array.from({ length: 2 * SSIM_RADIUS + 1 }, (_v, i) =>
    Math.exp(-0.5 * ((i - SSIM_RADIUS) / SSIM_SIGMA) ** 2),
  );
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
})();

/**
 * Mean SSIM (Wang et al. 2004) the standard way: per RGB channel with an 11×11 Gaussian window
 * (σ 1.5), population statistics, constants for a 0–255 range, averaged over the pixels whose
 * window lies inside the image (scikit-image's `structural_similarity(…, channel_axis=-1,
 * gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`, which crops the
 * same border), then over the channels. With `mask`, only pixels whose whole window is unmasked count.
 */
export function ssim(a: Uint8Array, b: Uint8Array, width: number, height: number, mask?: Uint8Array): number {
  check(
    a.length === width * height * 3 && b.length === a.length,
    'BUFFER_SIZE',
    'ssim needs two RGB images of width × height',
  );
  const r = SSIM_RADIUS;
  const w = SSIM_WEIGHTS;
  if (width <= 2 * r || height <= 2 * r) return Number.NaN;
  // Pixels whose window is wholly unmasked: a summed-area table of masked-out pixels.
  let valid: Uint8Array | undefined;
  if (mask) {
    const sat = new Int32Array((width + 1) * (height + 1));
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        sat[(y + 1) * (width + 1) + x + 1] =
          (mask[y * width + x] === 0 ? 1 : 0) +
          sat[y * (width + 1) + x + 1]! +
          sat[(y + 1) * (width + 1) + x]! -
          sat[y * (width + 1) + x]!;
    valid = new Uint8Array(width * height);
    for (let y = r; y < height - r; y++)
      for (let x = r; x < width - r; x++) {
        const x0 = x - r;
        const y0 = y - r;
        const x1 = x + r + 1;
        const y1 = y + r + 1;
        const bad =
          sat[y1 * (width + 1) + x1]! -
          sat[y0 * (width + 1) + x1]! -
          sat[y1 * (width + 1) + x0]! +
          sat[y0 * (width + 1) + x0]!;
        valid[y * width + x] = bad === 0 ? 1 : 0;
      }
  }
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const n = width * height;
  // Horizontal pass of x, y, x², y², xy into `h` (5 planes), then the vertical pass per pixel.
  const h = new Float64Array(n * 5);
  let total = 0;
  let counted = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++)
      for (let x = r; x < width - r; x++) {
        let sx = 0;
        let sy = 0;
        let sxx = 0;
        let syy = 0;
        let sxy = 0;
        for (let t = -r; t <= r; t++) {
          const q = (y * width + x + t) * 3 + c;
          const wt = w[t + r]!;
          const va = a[q]!;
          const vb = b[q]!;
          sx += wt * va;
          sy += wt * vb;
          sxx += wt * va * va;
          syy += wt * vb * vb;
          sxy += wt * va * vb;
        }
        const o = (y * width + x) * 5;
        h[o] = sx;
        h[o + 1] = sy;
        h[o + 2] = sxx;
        h[o + 3] = syy;
        h[o + 4] = sxy;
      }
    let sum = 0;
    let pixels = 0;
    for (let y = r; y < height - r; y++)
      for (let x = r; x < width - r; x++) {
        if (valid && valid[y * width + x] === 0) continue;
        let ux = 0;
        let uy = 0;
        let uxx = 0;
        let uyy = 0;
        let uxy = 0;
        for (let t = -r; t <= r; t++) {
          const o = ((y + t) * width + x) * 5;
          const wt = w[t + r]!;
          ux += wt * h[o]!;
          uy += wt * h[o + 1]!;
          uxx += wt * h[o + 2]!;
          uyy += wt * h[o + 3]!;
          uxy += wt * h[o + 4]!;
        }
        const vx = uxx - ux * ux;
        const vy = uyy - uy * uy;
        const vxy = uxy - ux * uy;
        sum += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        pixels++;
      }
    if (pixels === 0) return Number.NaN;
    total += sum / pixels;
    counted++;
  }
  return total / counted;
}
