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

/** RGB shrunk by an integer factor `s`: the mean of each s×s block (a box filter). */
export function shrinkRgb(rgb: Uint8Array, width: number, height: number, s: number): Uint8Array {
  const sw = Math.floor(width / s);
  const sh = Math.floor(height / s);
  const out = new Uint8Array(sw * sh * 3);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < s; dy++)
          for (let dx = 0; dx < s; dx++) sum += rgb[((y * s + dy) * width + x * s + dx) * 3 + c]!;
        out[(y * sw + x) * 3 + c] = Math.round(sum / (s * s));
      }
  return out;
}

/**
 * A contact sheet: RGB images of one size, each shrunk by an integer `shrink` (shrinkRgb), laid
 * out `columns` to a row with a 2-pixel white gutter. Returns the sheet and its size.
 */
export function contactSheet(
  images: readonly Uint8Array[],
  width: number,
  height: number,
  columns: number,
  shrink: number,
): { rgb: Uint8Array; width: number; height: number } {
  const GUTTER = 2;
  const tw = Math.floor(width / shrink);
  const th = Math.floor(height / shrink);
  const rows = Math.ceil(images.length / columns);
  const sw = columns * tw + (columns + 1) * GUTTER;
  const sh = rows * th + (rows + 1) * GUTTER;
  const out = new Uint8Array(sw * sh * 3).fill(255);
  images.forEach((img, i) => {
    const thumb = shrinkRgb(img, width, height, shrink);
    const ox = GUTTER + (i % columns) * (tw + GUTTER);
    const oy = GUTTER + Math.floor(i / columns) * (th + GUTTER);
    for (let y = 0; y < th; y++)
      out.set(thumb.subarray(y * tw * 3, (y + 1) * tw * 3), ((oy + y) * sw + ox) * 3);
  });
  return { rgb: out, width: sw, height: sh };
}
