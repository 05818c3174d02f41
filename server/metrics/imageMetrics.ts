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

/** Luma (BT.601) of a packed RGB image as Float64. */
function luma(rgb: Uint8Array): Float64Array {
  const out = new Float64Array(rgb.length / 3);
  for (let p = 0; p < out.length; p++)
    out[p] = 0.299 * rgb[p * 3]! + 0.587 * rgb[p * 3 + 1]! + 0.114 * rgb[p * 3 + 2]!;
  return out;
}

/**
 * Mean SSIM (Wang et al. 2004) on luma, 8×8 windows with stride 4, constants for a 0–255 range.
 * Windows that contain a masked-out pixel are skipped when `mask` is given.
 */
export function ssim(a: Uint8Array, b: Uint8Array, width: number, height: number, mask?: Uint8Array): number {
  check(
    a.length === width * height * 3 && b.length === a.length,
    'BUFFER_SIZE',
    'ssim needs two RGB images of width × height',
  );
  const ya = luma(a);
  const yb = luma(b);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const win = 8;
  let sum = 0;
  let windows = 0;
  for (let y0 = 0; y0 + win <= height; y0 += 4) {
    for (let x0 = 0; x0 + win <= width; x0 += 4) {
      let ma = 0,
        mb = 0,
        skip = false;
      for (let y = y0; y < y0 + win && !skip; y++) {
        for (let x = x0; x < x0 + win; x++) {
          const p = y * width + x;
          if (mask !== undefined && mask[p] === 0) {
            skip = true;
            break;
          }
          ma += ya[p]!;
          mb += yb[p]!;
        }
      }
      if (skip) continue;
      const n = win * win;
      ma /= n;
      mb /= n;
      let va = 0,
        vb = 0,
        cov = 0;
      for (let y = y0; y < y0 + win; y++) {
        for (let x = x0; x < x0 + win; x++) {
          const p = y * width + x;
          const da = ya[p]! - ma;
          const db = yb[p]! - mb;
          va += da * da;
          vb += db * db;
          cov += da * db;
        }
      }
      va /= n - 1;
      vb /= n - 1;
      cov /= n - 1;
      sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      windows++;
    }
  }
  return windows === 0 ? Number.NaN : sum / windows;
}
