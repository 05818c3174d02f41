import { cellUnit as importedCellUnit } from '../../shared/math/random.ts';
import type { SceneMaterial } from './sceneFormat.ts';

// A module-local copy: imported bindings can compile to getter calls (tsx, vitest), which the
// per-pixel noise must not pay for.
const cellUnit = importedCellUnit;

/** Smooth 2D value noise in [0, 1). */
function valueNoise(x: number, y: number, seed = 0): number {
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  const fx = x - ix;
  const fy = y - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = cellUnit(ix, iy, seed);
  const b = cellUnit(ix + 1, iy, seed);
  const c = cellUnit(ix, iy + 1, seed);
  const d = cellUnit(ix + 1, iy + 1, seed);
  return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy;
}

/** Three octaves of value noise in [0, 1). */
function fbm(x: number, y: number, seed = 0): number {
  return (
    0.57 * valueNoise(x, y, seed) +
    0.29 * valueNoise(x * 2.1, y * 2.1, seed + 1) +
    0.14 * valueNoise(x * 4.3, y * 4.3, seed + 2)
  );
}

const frac = (x: number): number => x - Math.floor(x);

/**
 * Each texture's average blend factor towards `color2` (what its pattern fades to when too fine to
 * show; the fine grain averages out).
 */
const PATTERN_MEAN = {
  solid: 0,
  checker: 0.5,
  stripes: 0.5,
  noise: 0.5,
  brick: 0.2,
  wood: 0.3,
  tiles: 0.2,
} as const satisfies Record<SceneMaterial['texture'], number>;

/** A material's average albedo (0–255 per channel), as seen from afar. */
export function meanAlbedo(m: SceneMaterial): [number, number, number] {
  const t = PATTERN_MEAN[m.texture];
  const c1 = m.color;
  const c2 = m.color2 ?? m.color;
  return [c1[0] + (c2[0] - c1[0]) * t, c1[1] + (c2[1] - c1[1]) * t, c1[2] + (c2[2] - c1[2]) * t];
}

/**
 * How much of a pattern with `cyclesPerM` survives a pixel footprint of `footprintM` metres: 1 well
 * below the Nyquist limit, fading to 0 at it, so distant detail turns into its average instead of
 * aliasing (the ground truth would otherwise change with every sub-pixel camera move).
 */
function detail(cyclesPerM: number, footprintM: number): number {
  const x = footprintM * cyclesPerM;
  return x <= 0.2 ? 1 : x >= 0.5 ? 0 : (0.5 - x) / 0.3;
}

/**
 * Albedo of a material at surface coordinates (u, v) in metres, written to out[0..2] (0–255).
 * Patterns are 2D in the face's plane so coplanar faces never flicker between pattern cells.
 * `footprintM` is the surface size of one pixel (0 = no filtering).
 */
export function sampleMaterial(
  m: SceneMaterial,
  u: number,
  v: number,
  out: Float64Array,
  footprintM = 0,
): void {
  const s = m.scale;
  const c1 = m.color;
  const c2 = m.color2 ?? m.color;
  let t = 0; // blend factor towards color2
  let mean = 0; // the pattern's average blend factor, what it fades to when too fine to show
  let cycles = s * 2; // where the pattern starts to alias, cycles per metre
  switch (m.texture) {
    case 'solid':
      t = 0;
      break;
    case 'checker':
      t = (Math.floor(u * s) + Math.floor(v * s)) & 1;
      mean = PATTERN_MEAN.checker;
      break;
    case 'stripes':
      t = Math.floor(u * s) & 1;
      mean = PATTERN_MEAN.stripes;
      break;
    case 'noise':
      t = fbm(u * s, v * s, 7);
      mean = PATTERN_MEAN.noise;
      cycles = s * 2;
      break;
    case 'brick': {
      const row = Math.floor(v * s * 2);
      const bu = frac(u * s + (row & 1 ? 0.5 : 0));
      const bv = frac(v * s * 2);
      t = bu < 0.05 || bv < 0.1 ? 1 : 0.15 * cellUnit(Math.floor(u * s + (row & 1 ? 0.5 : 0)), row, 3);
      mean = PATTERN_MEAN.brick;
      cycles = s * 4; // thin mortar lines: fade earlier than the bricks' own period
      break;
    }
    case 'wood': {
      const ring = frac(u * s + 1.5 * fbm(u * 0.7, v * 3, 11));
      t = ring < 0.25 ? 0.8 : 0.2 * fbm(u * 20, v * 2, 5);
      mean = PATTERN_MEAN.wood;
      cycles = s * 2;
      break;
    }
    case 'tiles': {
      const fu = frac(u * s);
      const fv = frac(v * s);
      t = fu < 0.05 || fv < 0.05 ? 1 : 0.2 * cellUnit(Math.floor(u * s), Math.floor(v * s), 9);
      mean = PATTERN_MEAN.tiles;
      cycles = s * 6; // thin grout lines: fade earlier than the tiles' own period
      break;
    }
  }
  if (footprintM > 0) t = mean + (t - mean) * detail(cycles, footprintM);
  // Fine grain on every material so that surfaces carry detail a memory has to keep.
  const grain =
    1 + 0.08 * (2 * valueNoise(u * 23, v * 23, 13) - 1) * (footprintM > 0 ? detail(46, footprintM) : 1);
  out[0] = (c1[0] + (c2[0] - c1[0]) * t) * grain;
  out[1] = (c1[1] + (c2[1] - c1[1]) * t) * grain;
  out[2] = (c1[2] + (c2[2] - c1[2]) * t) * grain;
}
