import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

/** Encodes packed RGB (3 bytes per pixel) as a PNG. */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0, n = width * height; i < n; i++) {
    png.data[i * 4] = rgb[i * 3]!;
    png.data[i * 4 + 1] = rgb[i * 3 + 1]!;
    png.data[i * 4 + 2] = rgb[i * 3 + 2]!;
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
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
