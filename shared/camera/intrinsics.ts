import { check } from '../errors.ts';

/** Pinhole intrinsics in pixels plus the image size they belong to. */
export interface Intrinsics {
  readonly fx: number;
  readonly fy: number;
  readonly cx: number;
  readonly cy: number;
  readonly width: number;
  readonly height: number;
}

/** Centred pinhole intrinsics from a horizontal field of view in degrees (square pixels). */
export function intrinsicsFromFov(width: number, height: number, hfovDeg: number): Intrinsics {
  check(hfovDeg > 0 && hfovDeg < 180, 'INVALID_INTRINSICS', `hfovDeg must be in (0, 180), got ${hfovDeg}`);
  const f = width / 2 / Math.tan((hfovDeg * Math.PI) / 360);
  const k = { fx: f, fy: f, cx: (width - 1) / 2, cy: (height - 1) / 2, width, height };
  validateIntrinsics(k);
  return k;
}

/** Throws INVALID_INTRINSICS unless focal lengths are positive, image size a positive integer, all finite. */
export function validateIntrinsics(k: Intrinsics): void {
  const ok =
    Number.isFinite(k.fx) &&
    Number.isFinite(k.fy) &&
    Number.isFinite(k.cx) &&
    Number.isFinite(k.cy) &&
    k.fx > 0 &&
    k.fy > 0 &&
    Number.isInteger(k.width) &&
    Number.isInteger(k.height) &&
    k.width > 0 &&
    k.height > 0 &&
    k.width <= 8192 &&
    k.height <= 8192;
  check(
    ok,
    'INVALID_INTRINSICS',
    `intrinsics must have finite fx, fy > 0 and an integer size in 1..8192, got ${JSON.stringify(k)}`,
  );
}
