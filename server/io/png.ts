import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

/**
 * Encodes packed RGB (3 bytes per pixel) as an RGB PNG. One filter (Paeth) for every row instead of
 * pngjs's per-row search over all five: a 455×452 minimap in ~7.5 ms instead of 20-37 ms, and
 * smaller (72.8 vs 75.5 KB, also for dropping the alpha channel).
 */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Buffer {
  const options = { colorType: 2, inputColorType: 2, inputHasAlpha: false, filterType: 4 } as const;
  const png = new PNG({ width, height, ...options });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, width * height * 3);
  return PNG.sync.write(png, options);
}

/** Writes packed RGB as a PNG file. */
export function writeRgbPng(path: string, rgb: Uint8Array, width: number, height: number): void {
  writeFileSync(path, encodeRgbPng(rgb, width, height));
}

/** Lays RGB images of one size side by side (one row) into a new RGB buffer. */
export function hstack(images: readonly Uint8Array[], width: number, height: number): Uint8Array {
  const out = new Uint8Array(images.length * width * height * 3);
  const stride = images.length * width * 3;
  images.forEach((img, k) => {
    for (let y = 0; y < height; y++)
      out.set(img.subarray(y * width * 3, (y + 1) * width * 3), y * stride + k * width * 3);
  });
  return out;
}
