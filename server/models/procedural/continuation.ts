import type { SceneMaterial } from '../../scene/sceneFormat.ts';
import { meanAlbedo } from '../../scene/textures.ts';
import type { Rgb } from './style.ts';

/**
 * What the memory already shows, carried into the invention: walls found in the remembered points
 * (continued past their seen ends with the same height and colour), and materials whose average
 * colour is the remembered one, so the invented floor and walls meet the memory without a seam.
 * Pure: points in, shapes and materials out.
 */

/** Remembered surface points in world coordinates, with their colours (0–255). */
export interface RememberedPoints {
  readonly x: readonly number[];
  readonly y: readonly number[];
  readonly z: readonly number[];
  readonly r: readonly number[];
  readonly g: readonly number[];
  readonly b: readonly number[];
}

/**
 * Whether the conditioning saw the world point (x, y, z): it lies inside one of its frames, not
 * behind the surface that frame shows there. A wall whose end was seen stops there (the memory
 * knows what comes after it: a corner, an opening, the sky); only an end nobody saw goes on.
 */
export type SeenTest = (x: number, y: number, z: number) => boolean;

/** A vertical wall the memory shows: its face, continued along its line. */
export interface FittedWall {
  /** Unit normal of the face in xz, towards the cameras that saw it. */
  readonly nx: number;
  readonly nz: number;
  /** The face's ends (x, z): the seen part, lengthened by up to WALL_CONTINUE_M where nobody saw its line. */
  readonly x0: number;
  readonly z0: number;
  readonly x1: number;
  readonly z1: number;
  /** Height of the wall's top (world y). */
  readonly topY: number;
  /** Mean remembered colour of the face, as shaded in the frames (0–255). */
  readonly colour: Rgb;
}

/** Points lower than this above the floor are floor, kerbs and benches, not wall. */
const WALL_MIN_HEIGHT_M = 0.6;
/** A wall reaches down to within this of the floor and up to at least WALL_MIN_TOP_M above it. */
const WALL_REACHES_DOWN_M = 1.2;
const WALL_MIN_TOP_M = 1.8;
/** A wall's seen face is at least this long (a pillar, a trunk or a small house's side is not a wall). */
const WALL_MIN_LENGTH_M = 4;
/** A wall's face is checked in columns this wide; this share of them must span its height. */
const WALL_COLUMN_M = 0.5;
const WALL_MIN_COLUMN_SHARE = 0.6;
/** How far an invented wall continues past each end of the part the memory shows. */
export const WALL_CONTINUE_M = 8;
/** The steps in which a wall's end is continued (each probed for having been seen). */
const END_PROBE_M = 0.5;
/** Orientation and offset resolution of the wall search (a Hough transform over xz). */
const ANGLES = 90;
const BIN_M = 0.25;
const RANGE_M = 48;
const INLIER_M = 0.2;
const MAX_WALLS = 4;
/** At most this many candidate points vote (every n-th is taken beyond it). */
const MAX_VOTERS = 6000;
/** A wall needs this many votes, and this share of the voters. */
const MIN_WALL_VOTES = 30;
const MIN_WALL_SHARE = 0.04;
/** A remembered colour this close (RGB distance) to a material's own, lit, keeps the material's. */
const CONTINUE_ABOVE = 16;
/** Floor points: within this of the fitted floor height. */
const FLOOR_BAND_M = 0.08;
/** A colour is taken from at least this many points, or not at all. */
const MIN_COLOUR_POINTS = 20;

/** The q-quantile (0–1) of sorted values, nearest rank below; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))))]!;
}

const quantile = (values: readonly number[], q: number): number =>
  percentile(
    values.slice().sort((a, b) => a - b),
    q,
  );

/**
 * The vertical walls among the remembered points, largest first: a Hough transform of the points
 * above floor level over lines in xz; a peak is a wall when its points reach from near the floor
 * to above head height along at least WALL_MIN_LENGTH_M of the line (a tree's crown, a pillar, a
 * bench are not). `viewer` (x, z) says which side of each face was seen. O(points × ANGLES).
 */
export function fitWalls(
  pts: RememberedPoints,
  floorY: number,
  viewer: readonly [number, number],
  seen: SeenTest = () => false,
): FittedWall[] {
  const voters: number[] = [];
  for (let i = 0; i < pts.y.length; i++) if (pts.y[i]! > floorY + WALL_MIN_HEIGHT_M) voters.push(i);
  const step = Math.max(1, Math.ceil(voters.length / MAX_VOTERS));
  const ids = voters.filter((_v, j) => j % step === 0);
  if (ids.length < MIN_WALL_VOTES) return [];
  const [vx, vz] = viewer;
  const bins = Math.ceil((2 * RANGE_M) / BIN_M);
  const cos = Float64Array.from({ length: ANGLES }, (_v, a) => Math.cos((a * Math.PI) / ANGLES));
  const sin = Float64Array.from({ length: ANGLES }, (_v, a) => Math.sin((a * Math.PI) / ANGLES));
  const votes = new Int32Array(ANGLES * bins);
  const binOf = (i: number, a: number): number => {
    const rho = (pts.x[i]! - vx) * cos[a]! + (pts.z[i]! - vz) * sin[a]!;
    return Math.floor((rho + RANGE_M) / BIN_M);
  };
  const vote = (i: number, w: number): void => {
    for (let a = 0; a < ANGLES; a++) {
      const b = binOf(i, a);
      if (b >= 0 && b < bins) votes[a * bins + b]! += w;
    }
  };
  for (const i of ids) vote(i, 1);
  const left = new Set(ids);
  const walls: FittedWall[] = [];
  const minVotes = Math.max(MIN_WALL_VOTES, MIN_WALL_SHARE * ids.length);
  // Peaks that are not walls are zeroed and the search goes on, a few more times than walls are wanted.
  for (let tries = 0; tries < 3 * MAX_WALLS && walls.length < MAX_WALLS; tries++) {
    let best = 0;
    for (let c = 1; c < votes.length; c++) if (votes[c]! > votes[best]!) best = c;
    if (votes[best]! < minVotes) break;
    const a = Math.floor(best / bins);
    const rho = ((best % bins) + 0.5) * BIN_M - RANGE_M;
    const inliers = [...left].filter((i) => {
      const r = (pts.x[i]! - vx) * cos[a]! + (pts.z[i]! - vz) * sin[a]!;
      return Math.abs(r - rho) <= INLIER_M;
    });
    const wall = inliers.length >= minVotes ? describeWall(pts, inliers, a, floorY, viewer, seen) : undefined;
    if (wall === undefined) {
      votes[best] = 0;
      continue;
    }
    walls.push(wall);
    for (const i of inliers) {
      vote(i, -1);
      left.delete(i);
    }
  }
  return walls;
}

/** The wall a Hough peak's points make, or undefined when they are not one. */
function describeWall(
  pts: RememberedPoints,
  inliers: readonly number[],
  angle: number,
  floorY: number,
  viewer: readonly [number, number],
  seen: SeenTest,
): FittedWall | undefined {
  const theta = (angle * Math.PI) / ANGLES;
  let nx = Math.cos(theta);
  let nz = Math.sin(theta);
  // The face's offset: the inliers' mean along the normal (the peak's bin is 0.25 m wide).
  let rho = 0;
  for (const i of inliers) rho += pts.x[i]! * nx + pts.z[i]! * nz;
  rho /= inliers.length;
  // Normal towards the viewer.
  if (viewer[0] * nx + viewer[1] * nz < rho) {
    nx = -nx;
    nz = -nz;
    rho = -rho;
  }
  const tx = -nz;
  const tz = nx;
  const along = inliers.map((i) => pts.x[i]! * tx + pts.z[i]! * tz);
  const heights = inliers.map((i) => pts.y[i]!);
  const s0 = quantile(along, 0.02);
  const s1 = quantile(along, 0.98);
  const low = quantile(heights, 0.05);
  const top = quantile(heights, 0.98);
  if (s1 - s0 < WALL_MIN_LENGTH_M || low > floorY + WALL_REACHES_DOWN_M || top < floorY + WALL_MIN_TOP_M)
    return undefined;
  // Along its length a wall is a wall everywhere: most columns of its face reach from near the floor
  // to above head height (a crown and a pillar that happen to line up are not one).
  const columns = Math.ceil((s1 - s0) / WALL_COLUMN_M);
  const columnLow = new Float64Array(columns).fill(Number.POSITIVE_INFINITY);
  const columnHigh = new Float64Array(columns).fill(Number.NEGATIVE_INFINITY);
  along.forEach((s, j) => {
    const c = Math.floor((s - s0) / WALL_COLUMN_M);
    if (c < 0 || c >= columns) return;
    columnLow[c] = Math.min(columnLow[c]!, heights[j]!);
    columnHigh[c] = Math.max(columnHigh[c]!, heights[j]!);
  });
  let wallColumns = 0;
  for (let c = 0; c < columns; c++)
    if (columnLow[c]! <= floorY + WALL_REACHES_DOWN_M && columnHigh[c]! >= floorY + WALL_MIN_TOP_M)
      wallColumns++;
  if (wallColumns < WALL_MIN_COLUMN_SHARE * columns) return undefined;
  // Each end continues, step by step, up to where somebody saw the wall's line (knee or head
  // height): what comes after a seen end is known (a corner, an opening, the sky).
  const seenAt = (s: number) =>
    [floorY + 0.5, floorY + 1.7].some((y) => seen(rho * nx + s * tx, y, rho * nz + s * tz));
  const reach = (end: number, dir: number): number => {
    let s = end;
    while (Math.abs(s - end) < WALL_CONTINUE_M && !seenAt(s + dir * END_PROBE_M)) s += dir * END_PROBE_M;
    return s;
  };
  const a0 = reach(s0, -1);
  const a1 = reach(s1, 1);
  return {
    nx,
    nz,
    x0: rho * nx + a0 * tx,
    z0: rho * nz + a0 * tz,
    x1: rho * nx + a1 * tx,
    z1: rho * nz + a1 * tz,
    topY: top,
    colour: meanColour(pts, inliers),
  };
}

/** Mean colour of the remembered points within FLOOR_BAND_M of the floor, or undefined with too few. */
export function floorColour(pts: RememberedPoints, floorY: number): Rgb | undefined {
  return meanColourWhere(pts, (i) => Math.abs(pts.y[i]! - floorY) <= FLOOR_BAND_M);
}

/** Mean colour of the remembered points `keep` selects, or undefined with too few of them. */
export function meanColourWhere(pts: RememberedPoints, keep: (i: number) => boolean): Rgb | undefined {
  const chosen: number[] = [];
  for (let i = 0; i < pts.y.length; i++) if (keep(i)) chosen.push(i);
  return chosen.length < MIN_COLOUR_POINTS ? undefined : meanColour(pts, chosen);
}

/** Mean colour of the points `indices` names (at least one). */
function meanColour(pts: RememberedPoints, indices: readonly number[]): Rgb {
  const sum: Rgb = [0, 0, 0];
  for (const i of indices) {
    sum[0] += pts.r[i]!;
    sum[1] += pts.g[i]!;
    sum[2] += pts.b[i]!;
  }
  const n = indices.length;
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}

/**
 * `mat` with its colours scaled per channel so that, lit with `shade` (the ray caster's ambient +
 * diffuse term for the surface), its average colour is `seen`: the pattern stays the style's, the
 * colour becomes the memory's.
 */
export function continueMaterial(mat: SceneMaterial, seen: Rgb, shade: number): SceneMaterial {
  const mean = meanAlbedo(mat);
  // Close enough already (an invented world remembering its own floor): the style's own colours,
  // which do not drift from clip to clip with what each clip's view averages over.
  const off = Math.hypot(seen[0] - mean[0] * shade, seen[1] - mean[1] * shade, seen[2] - mean[2] * shade);
  if (off < CONTINUE_ABOVE) return mat;
  const gain = [0, 1, 2].map((c) => Math.min(4, Math.max(0.2, seen[c]! / shade / Math.max(1, mean[c]!))));
  const scale = (c: readonly number[]): Rgb => [
    Math.min(255, c[0]! * gain[0]!),
    Math.min(255, c[1]! * gain[1]!),
    Math.min(255, c[2]! * gain[2]!),
  ];
  return { ...mat, color: scale(mat.color), color2: scale(mat.color2 ?? mat.color) };
}

/** Shortest xz distance from (x, z) to a wall's face segment. */
export function distanceToWall(w: FittedWall, x: number, z: number): number {
  const dx = w.x1 - w.x0;
  const dz = w.z1 - w.z0;
  const t = Math.min(1, Math.max(0, ((x - w.x0) * dx + (z - w.z0) * dz) / (dx * dx + dz * dz)));
  return Math.hypot(x - (w.x0 + t * dx), z - (w.z0 + t * dz));
}
