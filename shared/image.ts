import { check } from './errors.ts';

/** An RGB-D image: row-major, top-left origin, RGB 3 bytes per pixel, depth in metres (0 = none). */
export interface RgbdImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  readonly depth: Float32Array;
}

/** Throws BUFFER_SIZE unless rgb and depth match width × height. */
export function validateRgbd(img: RgbdImage, what = 'image'): void {
  const n = img.width * img.height;
  check(
    Number.isInteger(n) && n > 0,
    'BUFFER_SIZE',
    `${what} has an invalid size ${img.width}×${img.height}`,
  );
  check(
    img.rgb instanceof Uint8Array && img.rgb.length === n * 3,
    'BUFFER_SIZE',
    `${what}.rgb must be a Uint8Array of ${n * 3} bytes (${img.width}×${img.height}×3), got ${img.rgb?.length}`,
  );
  check(
    img.depth instanceof Float32Array && img.depth.length === n,
    'BUFFER_SIZE',
    `${what}.depth must be a Float32Array of ${n} values (${img.width}×${img.height}), got ${img.depth?.length}`,
  );
}
