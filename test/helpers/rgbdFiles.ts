import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import sharp from 'sharp';

/** Writes depth (metres) as a 16-bit grey PNG in `unitsPerM` units, clamped to 65535 (0 stays "none"). */
export function writeDepthPng(
  path: string,
  depth: Float32Array,
  width: number,
  height: number,
  unitsPerM: number,
): void {
  const options = { bitDepth: 16, colorType: 0, inputColorType: 0, inputHasAlpha: false } as const;
  const png = new PNG({ width, height, ...options });
  // pngjs takes 16-bit samples in native byte order.
  png.data = Buffer.from(
    new Uint16Array(depth.map((d) => Math.min(65535, Math.round(d * unitsPerM)))).buffer,
  );
  writeFileSync(path, PNG.sync.write(png, options));
}

/** Writes packed RGB as a JPEG (quality 95), as captures store colour. */
export async function writeJpeg(path: string, rgb: Uint8Array, width: number, height: number): Promise<void> {
  await sharp(Buffer.from(rgb), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(path);
}
