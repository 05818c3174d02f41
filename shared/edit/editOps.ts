import { z } from 'zod';
import type { Vec3 } from '../math/vec3.ts';

/**
 * Edits of a world's memory as both sides describe them: the regions an edit acts on, the objects
 * a player can place, their bounds and caps, and the surface points of a placed object (the server
 * writes them into the memory; the client draws the same points at once, before the server's
 * chunks arrive). Pure: no I/O.
 */

/** Longest edge of an edit's bounding box, metres. */
export const MAX_EDIT_EXTENT_M = 8;
/** Largest brush or sphere radius, metres. */
export const MAX_BRUSH_RADIUS_M = 2;
/** Points of one brush stroke. */
export const MAX_STROKE_POINTS = 64;
/** Longest edge of a placed object, metres. */
const MAX_OBJECT_SIZE_M = 4;
/** Voxels one edit may change; a larger one is refused whole (TOO_LARGE) and changes nothing. */
export const MAX_EDIT_VOXELS = 400_000;

/** Coordinates an edit may name, metres (far inside the memory's addressable world). */
const MAX_COORD_M = 100_000;

/** The space an erase or recolour acts on. A stroke is the capsules between consecutive points. */
export type EditRegion =
  | { readonly shape: 'box'; readonly min: Vec3; readonly max: Vec3 }
  | { readonly shape: 'sphere'; readonly center: Vec3; readonly radius: number }
  | { readonly shape: 'stroke'; readonly points: readonly Vec3[]; readonly radius: number };

/** A primitive a player places: bottom centre at `at`, turned `yaw` radians about +y. */
export interface PlacedObject {
  /** box: size = [width, height, depth]; ball: a sphere of diameter size[0]; pillar: a cylinder of diameter size[0], height size[1]. */
  readonly shape: 'box' | 'ball' | 'pillar';
  readonly size: Vec3;
  readonly color: Vec3;
  readonly texture: 'plain' | 'checker' | 'stripes';
  readonly at: Vec3;
  readonly yaw: number;
}

/** What a player (or the `world edit` tool) asks of the memory. */
export type EditOp =
  | { readonly op: 'erase'; readonly region: EditRegion }
  | { readonly op: 'recolor'; readonly region: EditRegion; readonly color: Vec3 }
  | { readonly op: 'insert'; readonly object: PlacedObject };

export interface Bounds {
  readonly min: Vec3;
  readonly max: Vec3;
}

const coord = z
  .number()
  .refine(Number.isFinite, 'must be a finite number')
  .refine((v) => Math.abs(v) <= MAX_COORD_M, `must be within ±${MAX_COORD_M} m`);
const vec3 = z.tuple([coord, coord, coord]);
const radius = z
  .number()
  .refine(Number.isFinite, 'must be a finite number')
  .refine((v) => v > 0 && v <= MAX_BRUSH_RADIUS_M, `must be in (0, ${MAX_BRUSH_RADIUS_M}] m`);
const channel = z.number().int().min(0).max(255);
const color = z.tuple([channel, channel, channel]);
const objectEdge = z
  .number()
  .refine(Number.isFinite, 'must be a finite number')
  .refine((v) => v >= 0.02 && v <= MAX_OBJECT_SIZE_M, `must be in [0.02, ${MAX_OBJECT_SIZE_M}] m`);

/** An erase or recolour region (also how recorded sessions keep the regions erased at their start). */
export const editRegionSchema = z.discriminatedUnion('shape', [
  z.strictObject({ shape: z.literal('box'), min: vec3, max: vec3 }),
  z.strictObject({ shape: z.literal('sphere'), center: vec3, radius }),
  z.strictObject({ shape: z.literal('stroke'), points: z.array(vec3).min(1).max(MAX_STROKE_POINTS), radius }),
]);

const objectSchema = z.strictObject({
  shape: z.enum(['box', 'ball', 'pillar']),
  size: z.tuple([objectEdge, objectEdge, objectEdge]),
  color,
  texture: z.enum(['plain', 'checker', 'stripes']),
  at: vec3,
  yaw: z.number().refine((v) => Number.isFinite(v) && Math.abs(v) <= 2 * Math.PI, 'must be within ±2π'),
});

/** Checks what zod's shapes cannot: a box's corners in order and every edit's extent. */
const withinCaps = (op: EditOp, ctx: z.RefinementCtx): void => {
  if (op.op !== 'insert' && op.region.shape === 'box') {
    const { min, max } = op.region;
    if (!(min[0] < max[0] && min[1] < max[1] && min[2] < max[2]))
      ctx.addIssue({ code: 'custom', path: ['region'], message: 'a box needs min < max on every axis' });
  }
  const b = editBounds(op);
  const extent = Math.max(b.max[0] - b.min[0], b.max[1] - b.min[1], b.max[2] - b.min[2]);
  if (!(extent <= MAX_EDIT_EXTENT_M))
    ctx.addIssue({
      code: 'custom',
      message: `the edit spans ${extent.toFixed(2)} m: at most ${MAX_EDIT_EXTENT_M} m on every axis`,
    });
};

/** The edit operations a client may send (validated at the server's edge). */
export const editOpSchema = z
  .discriminatedUnion('op', [
    z.strictObject({ op: z.literal('erase'), region: editRegionSchema }),
    z.strictObject({ op: z.literal('recolor'), region: editRegionSchema, color }),
    z.strictObject({ op: z.literal('insert'), object: objectSchema }),
  ])
  .superRefine((op, ctx) => withinCaps(op as EditOp, ctx)) as unknown as z.ZodType<EditOp>;

/** Axis-aligned bounds of a region. */
export function regionBounds(region: EditRegion): Bounds {
  switch (region.shape) {
    case 'box':
      return { min: region.min, max: region.max };
    case 'sphere': {
      const { center: c, radius: r } = region;
      return { min: [c[0] - r, c[1] - r, c[2] - r], max: [c[0] + r, c[1] + r, c[2] + r] };
    }
    case 'stroke': {
      const min = [Infinity, Infinity, Infinity];
      const max = [-Infinity, -Infinity, -Infinity];
      for (const p of region.points)
        for (let a = 0; a < 3; a++) {
          min[a] = Math.min(min[a]!, p[a]! - region.radius);
          max[a] = Math.max(max[a]!, p[a]! + region.radius);
        }
      return { min: min as unknown as Vec3, max: max as unknown as Vec3 };
    }
  }
}

/** Half-extents of a placed object's footprint before its yaw (x, z) and its height. */
function objectExtent(o: PlacedObject): { hx: number; hz: number; h: number } {
  if (o.shape === 'box') return { hx: o.size[0] / 2, hz: o.size[2] / 2, h: o.size[1] };
  if (o.shape === 'ball') return { hx: o.size[0] / 2, hz: o.size[0] / 2, h: o.size[0] };
  return { hx: o.size[0] / 2, hz: o.size[0] / 2, h: o.size[1] };
}

/** Axis-aligned bounds of what an edit can change. */
export function editBounds(op: EditOp): Bounds {
  if (op.op !== 'insert') return regionBounds(op.region);
  const o = op.object;
  const { hx, hz, h } = objectExtent(o);
  // The footprint's bounding square after any yaw.
  const r = Math.hypot(hx, hz);
  return { min: [o.at[0] - r, o.at[1], o.at[2] - r], max: [o.at[0] + r, o.at[1] + h, o.at[2] + r] };
}

/** Whether the point (x, y, z) lies inside the region. */
export function insideRegion(region: EditRegion, x: number, y: number, z: number): boolean {
  switch (region.shape) {
    case 'box': {
      const { min, max } = region;
      return x >= min[0] && x < max[0] && y >= min[1] && y < max[1] && z >= min[2] && z < max[2];
    }
    case 'sphere': {
      const c = region.center;
      const dx = x - c[0],
        dy = y - c[1],
        dz = z - c[2];
      return dx * dx + dy * dy + dz * dz < region.radius * region.radius;
    }
    case 'stroke': {
      const pts = region.points;
      const r2 = region.radius * region.radius;
      if (pts.length === 1) return distance2ToSegment(pts[0]!, pts[0]!, x, y, z) < r2;
      for (let i = 1; i < pts.length; i++)
        if (distance2ToSegment(pts[i - 1]!, pts[i]!, x, y, z) < r2) return true;
      return false;
    }
  }
}

/** Squared distance from (x, y, z) to the segment a–b. */
function distance2ToSegment(a: Vec3, b: Vec3, x: number, y: number, z: number): number {
  const ex = b[0] - a[0],
    ey = b[1] - a[1],
    ez = b[2] - a[2];
  const len2 = ex * ex + ey * ey + ez * ez;
  let t = len2 > 0 ? ((x - a[0]) * ex + (y - a[1]) * ey + (z - a[2]) * ez) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  const dx = x - (a[0] + t * ex),
    dy = y - (a[1] + t * ey),
    dz = z - (a[2] + t * ez);
  return dx * dx + dy * dy + dz * dz;
}

/**
 * Whether the axis-aligned cube [x, x+edge)×… lies wholly inside the region: all eight corners in
 * the box or sphere, or in one capsule of a stroke (each is convex, so its corners decide).
 */
export function cubeInsideRegion(region: EditRegion, x: number, y: number, z: number, edge: number): boolean {
  const corners = (inside: (px: number, py: number, pz: number) => boolean): boolean => {
    for (let c = 0; c < 8; c++)
      if (!inside(x + (c & 1 ? edge : 0), y + (c & 2 ? edge : 0), z + (c & 4 ? edge : 0))) return false;
    return true;
  };
  if (region.shape === 'box') {
    const { min, max } = region;
    return (
      x >= min[0] &&
      y >= min[1] &&
      z >= min[2] &&
      x + edge <= max[0] &&
      y + edge <= max[1] &&
      z + edge <= max[2]
    );
  }
  if (region.shape === 'sphere') return corners((px, py, pz) => insideRegion(region, px, py, pz));
  const r2 = region.radius * region.radius;
  const pts = region.points;
  for (let i = 0; i < Math.max(1, pts.length - 1); i++) {
    const a = pts[i]!;
    const b = pts[Math.min(i + 1, pts.length - 1)]!;
    if (corners((px, py, pz) => distance2ToSegment(a, b, px, py, pz) < r2)) return true;
  }
  return false;
}

/** Surface points of a placed object: world positions (xyz) and colours (rgb), one per sample. */
export interface ObjectPoints {
  readonly count: number;
  readonly positions: Float32Array;
  readonly colors: Uint8Array;
}

/** Direction the light comes from when a placed object's faces are shaded (up and to one side). */
const LIGHT: Vec3 = [0.36, 0.86, 0.36];

/**
 * The object's surface sampled every `spacingM` (half a voxel gives every surface voxel a point),
 * coloured by its texture and shaded by a fixed light so its faces read as a solid in the memory's
 * render. Deterministic: the client and the server get the same points.
 */
export function objectSurfacePoints(o: PlacedObject, spacingM: number): ObjectPoints {
  const pos: number[] = [];
  const col: number[] = [];
  const cos = Math.cos(o.yaw);
  const sin = Math.sin(o.yaw);
  // (lx, ly, lz): object frame, origin at the bottom centre; (nx, ny, nz): the surface normal there.
  const emit = (
    lx: number,
    ly: number,
    lz: number,
    nx: number,
    ny: number,
    nz: number,
    u: number,
    v: number,
  ): void => {
    pos.push(o.at[0] + cos * lx + sin * lz, o.at[1] + ly, o.at[2] - sin * lx + cos * lz);
    const wx = cos * nx + sin * nz;
    const wz = -sin * nx + cos * nz;
    const light = 0.55 + 0.45 * Math.max(0, wx * LIGHT[0] + ny * LIGHT[1] + wz * LIGHT[2]);
    const tex =
      o.texture === 'checker'
        ? (Math.floor(u / 0.2) + Math.floor(v / 0.2)) & 1
          ? 0.6
          : 1
        : o.texture === 'stripes'
          ? Math.floor(v / 0.1) & 1
            ? 0.65
            : 1
          : 1;
    for (let c = 0; c < 3; c++) col.push(Math.min(255, Math.round(o.color[c]! * light * tex)));
  };
  const steps = (len: number): number => Math.max(1, Math.ceil(len / spacingM));
  if (o.shape === 'box') {
    const [w, h, d] = o.size;
    // Each face as a grid over its two in-plane axes.
    const face = (
      nu: number,
      nv: number,
      at: (a: number, b: number) => [number, number, number],
      n: Vec3,
      lu: number,
      lv: number,
    ): void => {
      for (let i = 0; i <= nu; i++)
        for (let j = 0; j <= nv; j++) {
          const [x, y, z] = at((i / nu) * lu, (j / nv) * lv);
          emit(x, y, z, n[0], n[1], n[2], (i / nu) * lu, (j / nv) * lv);
        }
    };
    const nw = steps(w),
      nh = steps(h),
      nd = steps(d);
    face(nw, nd, (a, b) => [a - w / 2, h, b - d / 2], [0, 1, 0], w, d);
    face(nw, nd, (a, b) => [a - w / 2, 0, b - d / 2], [0, -1, 0], w, d);
    face(nw, nh, (a, b) => [a - w / 2, b, d / 2], [0, 0, 1], w, h);
    face(nw, nh, (a, b) => [a - w / 2, b, -d / 2], [0, 0, -1], w, h);
    face(nd, nh, (a, b) => [w / 2, b, a - d / 2], [1, 0, 0], d, h);
    face(nd, nh, (a, b) => [-w / 2, b, a - d / 2], [-1, 0, 0], d, h);
  } else if (o.shape === 'ball') {
    const r = o.size[0] / 2;
    const rings = steps(Math.PI * r);
    for (let i = 0; i <= rings; i++) {
      const theta = (i / rings) * Math.PI;
      const ringR = r * Math.sin(theta);
      const ny = Math.cos(theta);
      const around = Math.max(1, steps(2 * Math.PI * ringR));
      for (let j = 0; j < around; j++) {
        const phi = (j / around) * 2 * Math.PI;
        const nx = Math.sin(theta) * Math.cos(phi);
        const nz = Math.sin(theta) * Math.sin(phi);
        emit(r * nx, r + r * ny, r * nz, nx, ny, nz, phi * r, theta * r);
      }
    }
  } else {
    const r = o.size[0] / 2;
    const h = o.size[1];
    const around = steps(2 * Math.PI * r);
    const up = steps(h);
    for (let j = 0; j < around; j++) {
      const phi = (j / around) * 2 * Math.PI;
      const nx = Math.cos(phi);
      const nz = Math.sin(phi);
      for (let i = 0; i <= up; i++) emit(r * nx, (i / up) * h, r * nz, nx, 0, nz, phi * r, (i / up) * h);
    }
    // Top and bottom discs.
    const rings = steps(r);
    for (let i = 0; i <= rings; i++) {
      const rr = (i / rings) * r;
      const n = Math.max(1, steps(2 * Math.PI * rr));
      for (let j = 0; j < n; j++) {
        const phi = (j / n) * 2 * Math.PI;
        emit(rr * Math.cos(phi), h, rr * Math.sin(phi), 0, 1, 0, rr * Math.cos(phi), rr * Math.sin(phi));
        emit(rr * Math.cos(phi), 0, rr * Math.sin(phi), 0, -1, 0, rr * Math.cos(phi), rr * Math.sin(phi));
      }
    }
  }
  return { count: pos.length / 3, positions: Float32Array.from(pos), colors: Uint8Array.from(col) };
}

/** A point cloud placed by the `world edit --insert-ply` tool, as its log entry keeps it (not the points). */
interface InsertPlyOp {
  readonly op: 'insertPly';
  /** The file's name. */
  readonly source: string;
  readonly points: number;
  readonly at: Vec3;
  readonly scale: number;
}

/** What an edit log entry holds: an edit operation, or the summary of a placed point cloud. */
export type LoggedEditOp = EditOp | InsertPlyOp;

/** One entry of a world's edit log, as the store keeps it. */
export interface EditRecord {
  readonly seq: number;
  readonly author: string;
  /** ISO 8601. */
  readonly at: string;
  readonly op: LoggedEditOp;
  readonly bounds: Bounds;
  readonly undone: boolean;
}

/** Reads a logged operation back (from the store). */
export const loggedEditOpSchema = z.union([
  editOpSchema,
  z.strictObject({
    op: z.literal('insertPly'),
    source: z.string().max(4096),
    points: z.number().int().min(0),
    at: vec3,
    scale: z.number().refine((v) => Number.isFinite(v) && v > 0, 'must be a positive number'),
  }),
]) as unknown as z.ZodType<LoggedEditOp>;
