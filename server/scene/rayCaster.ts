import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import type { Scene, SceneEntity, SceneMaterial, SceneShape } from './sceneFormat.ts';
import { sampleMaterial } from './textures.ts';

/** A ground-truth frame: RGB-D plus which pixels show a moving entity (1) or not (0). */
export interface GroundTruthFrame {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  /** Camera z in metres; 0 where the ray hits nothing within range (sky). */
  readonly depth: Float32Array;
  readonly dynamicMask: Uint8Array;
}

/** Primitive kinds (numbers: the per-pixel switch compares small integers). */
const PLANE = 0;
const SPHERE = 1;
const CYLINDER = 2;
const BOX = 3;

/**
 * One shape placed for a frame, flattened: every primitive has the same fields (one hidden class),
 * so the per-pixel intersection reads them without the megamorphic lookups that the scene's
 * differently shaped objects cost (the ray caster spent half its time in them).
 */
interface Primitive {
  readonly kind: number;
  readonly shape: SceneShape;
  readonly material: SceneMaterial;
  readonly dynamic: boolean;
  /** Anchor: plane point, sphere or box centre, cylinder base centre. */
  readonly ax: number;
  readonly ay: number;
  readonly az: number;
  /** World offset added to the shape (entities' current path position). */
  readonly offX: number;
  readonly offY: number;
  readonly offZ: number;
  /** Plane normal (as given) or box half-size. */
  readonly vx: number;
  readonly vy: number;
  readonly vz: number;
  /** Sphere or cylinder radius. */
  readonly radius: number;
  /** A plane's normal length (its normal need not be unit). */
  readonly normalLength: number;
  /** Cylinder height. */
  readonly height: number;
  readonly cosY: number;
  readonly sinY: number;
}

const EPS = 1e-6;

/** Position of an entity along its path at time `timeS` (constant speed, optionally looping). */
export function entityPosition(e: SceneEntity, timeS: number): Vec3 {
  const pts = e.path.loop ? [...e.path.points, e.path.points[0]!] : e.path.points;
  const seg: number[] = [];
  let total = 0;
  for (let i = 0; i + 1 < pts.length; i++) {
    const a = pts[i]!;
    const b = pts[i + 1]!;
    const d = Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
    seg.push(d);
    total += d;
  }
  let s = (timeS + e.path.startOffsetS) * e.path.speedMps;
  s = e.path.loop ? ((s % total) + total) % total : Math.max(0, Math.min(total, s));
  for (let i = 0; i < seg.length; i++) {
    const d = seg[i]!;
    if (s <= d || i === seg.length - 1) {
      const a = pts[i]!;
      const b = pts[i + 1]!;
      const f = d > 0 ? Math.min(1, s / d) : 0;
      return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
    }
    s -= d;
  }
  return pts[0]!;
}

const KINDS = { plane: PLANE, sphere: SPHERE, cylinder: CYLINDER, box: BOX } as const;

function primitivesAt(
  scene: Scene,
  timeS: number,
  includeEntities: boolean,
  includeStatic: boolean,
): Primitive[] {
  const out: Primitive[] = [];
  const mk = (shape: SceneShape, dynamic: boolean, offset: Vec3): Primitive => {
    const rot = shape.type === 'box' ? (shape.rotationYDeg * Math.PI) / 180 : 0;
    const anchor =
      shape.type === 'plane' ? shape.point : shape.type === 'cylinder' ? shape.base : shape.center;
    const v: Vec3 =
      shape.type === 'plane'
        ? shape.normal
        : shape.type === 'box'
          ? [shape.size[0] / 2, shape.size[1] / 2, shape.size[2] / 2]
          : [0, 0, 0];
    return {
      kind: KINDS[shape.type],
      shape,
      material: scene.materials[shape.material]!,
      dynamic,
      ax: anchor[0],
      ay: anchor[1],
      az: anchor[2],
      offX: offset[0],
      offY: offset[1],
      offZ: offset[2],
      vx: v[0],
      vy: v[1],
      vz: v[2],
      radius: shape.type === 'sphere' || shape.type === 'cylinder' ? shape.radius : 0,
      normalLength: shape.type === 'plane' ? Math.hypot(v[0], v[1], v[2]) : 0,
      height: shape.type === 'cylinder' ? shape.height : 0,
      cosY: Math.cos(rot),
      sinY: Math.sin(rot),
    };
  };
  if (includeStatic) for (const o of scene.objects) out.push(mk(o, false, [0, 0, 0]));
  if (includeEntities) for (const e of scene.entities) out.push(mk(e.shape, true, entityPosition(e, timeS)));
  return out;
}

// Scratch for the nearest hit: local position and local normal of the surface.
const hitLocal = new Float64Array(3);
const hitNormal = new Float64Array(3);

/** A box's slab test so far: [entry t, exit t, axis of the entered face, sign of its normal]. */
const box = new Float64Array(4);

/**
 * Clips `box` by the slab |x| ≤ h of one local axis for the ray o + t·d; false when the ray misses
 * the box (outside a slab it runs parallel to, an empty interval, or all of it at or before tMin).
 */
function clipSlab(o: number, d: number, h: number, axis: number, tMin: number): boolean {
  if (Math.abs(d) < 1e-12) return !(o < -h || o > h);
  const inv = 1 / d;
  let t0 = (-h - o) * inv;
  let t1 = (h - o) * inv;
  let sign = -1;
  if (t0 > t1) {
    const swap = t0;
    t0 = t1;
    t1 = swap;
    sign = 1;
  }
  if (t0 > box[0]!) {
    box[0] = t0;
    box[2] = axis;
    box[3] = sign;
  }
  if (t1 < box[1]!) box[1] = t1;
  return !(box[0]! > box[1]! || box[1]! <= tMin);
}

/**
 * Ray–primitive intersection in the primitive's local frame; returns t or Infinity, and with `fill`
 * also fills the hit scratch (local point and normal), which only the nearest hit needs.
 */
function intersect(
  p: Primitive,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  tMin: number,
  fill: boolean,
): number {
  switch (p.kind) {
    case PLANE: {
      const nx = p.vx,
        ny = p.vy,
        nz = p.vz;
      const denom = dx * nx + dy * ny + dz * nz;
      if (Math.abs(denom) < 1e-12) return Infinity;
      const t = ((p.ax - ox) * nx + (p.ay - oy) * ny + (p.az - oz) * nz) / denom;
      if (t <= tMin) return Infinity;
      if (!fill) return t;
      hitLocal[0] = ox + dx * t;
      hitLocal[1] = oy + dy * t;
      hitLocal[2] = oz + dz * t;
      const nl = p.normalLength;
      hitNormal[0] = nx / nl;
      hitNormal[1] = ny / nl;
      hitNormal[2] = nz / nl;
      return t;
    }
    case SPHERE: {
      const cx = ox - p.ax - p.offX;
      const cy = oy - p.ay - p.offY;
      const cz = oz - p.az - p.offZ;
      const radius = p.radius;
      const a = dx * dx + dy * dy + dz * dz;
      const b = cx * dx + cy * dy + cz * dz;
      const c = cx * cx + cy * cy + cz * cz - radius * radius;
      const disc = b * b - a * c;
      if (disc < 0) return Infinity;
      const sq = Math.sqrt(disc);
      let t = (-b - sq) / a;
      if (t <= tMin) t = (-b + sq) / a;
      if (t <= tMin) return Infinity;
      if (!fill) return t;
      hitLocal[0] = cx + dx * t;
      hitLocal[1] = cy + dy * t;
      hitLocal[2] = cz + dz * t;
      hitNormal[0] = hitLocal[0] / radius;
      hitNormal[1] = hitLocal[1] / radius;
      hitNormal[2] = hitLocal[2] / radius;
      return t;
    }
    case CYLINDER: {
      const cx = ox - p.ax - p.offX;
      const cy = oy - p.ay - p.offY;
      const cz = oz - p.az - p.offZ;
      const radius = p.radius;
      const height = p.height;
      let best = Infinity;
      const a = dx * dx + dz * dz;
      if (a > 1e-12) {
        const b = cx * dx + cz * dz;
        const c = cx * cx + cz * cz - radius * radius;
        const disc = b * b - a * c;
        if (disc >= 0) {
          const sq = Math.sqrt(disc);
          for (let side = 0; side < 2; side++) {
            const t = (-b + (side === 0 ? -sq : sq)) / a;
            const y = cy + dy * t;
            if (t > tMin && t < best && y >= 0 && y <= height) {
              best = t;
              hitNormal[0] = (cx + dx * t) / radius;
              hitNormal[1] = 0;
              hitNormal[2] = (cz + dz * t) / radius;
            }
          }
        }
      }
      if (Math.abs(dy) > 1e-12) {
        for (let cap = 0; cap < 2; cap++) {
          const capY = cap === 0 ? 0 : height;
          const t = (capY - cy) / dy;
          if (t > tMin && t < best) {
            const x = cx + dx * t;
            const z = cz + dz * t;
            if (x * x + z * z <= radius * radius) {
              best = t;
              hitNormal[0] = 0;
              hitNormal[1] = capY === 0 ? -1 : 1;
              hitNormal[2] = 0;
            }
          }
        }
      }
      if (fill && best < Infinity) {
        hitLocal[0] = cx + dx * best;
        hitLocal[1] = cy + dy * best;
        hitLocal[2] = cz + dz * best;
      }
      return best;
    }
    default: {
      // A box. Into the box frame: translate, then rotate by −rotationY about +y.
      const tx = ox - p.ax - p.offX;
      const ty = oy - p.ay - p.offY;
      const tz = oz - p.az - p.offZ;
      const c = p.cosY;
      const sn = p.sinY;
      const lx = c * tx - sn * tz;
      const lz = sn * tx + c * tz;
      const ldx = c * dx - sn * dz;
      const ldz = sn * dx + c * dz;
      const hx = p.vx;
      const hy = p.vy;
      const hz = p.vz;
      // Slab test per local axis; remember which face was entered last (the hit face).
      box[0] = Number.NEGATIVE_INFINITY;
      box[1] = Number.POSITIVE_INFINITY;
      box[2] = 0;
      box[3] = 1;
      if (
        !clipSlab(lx, ldx, hx, 0, tMin) ||
        !clipSlab(ty, dy, hy, 1, tMin) ||
        !clipSlab(lz, ldz, hz, 2, tMin)
      )
        return Infinity;
      const tmin = box[0]!;
      const tmax = box[1]!;
      let axis = box[2]!;
      let sign = box[3]!;
      let t = tmin;
      if (t <= tMin) {
        // Camera inside the box: the exit face is the visible one (rooms are boxes seen from inside).
        t = tmax;
        if (t <= tMin) return Infinity;
        if (!fill) return t;
        const ex = lx + ldx * t;
        const ey = ty + dy * t;
        const ez = lz + ldz * t;
        const ax = Math.abs(ex) / hx;
        const ay = Math.abs(ey) / hy;
        const az = Math.abs(ez) / hz;
        axis = ax >= ay && ax >= az ? 0 : ay >= az ? 1 : 2;
        sign = -Math.sign(axis === 0 ? ex : axis === 1 ? ey : ez);
      }
      if (!fill) return t;
      hitLocal[0] = lx + ldx * t + hx;
      hitLocal[1] = ty + dy * t + hy;
      hitLocal[2] = lz + ldz * t + hz;
      const nlx = axis === 0 ? sign : 0;
      const nlz = axis === 2 ? sign : 0;
      hitNormal[0] = axis === 0 ? nlx : 0; // local normal; rotated to world for lighting below
      hitNormal[1] = axis === 1 ? sign : 0;
      hitNormal[2] = nlz;
      return t;
    }
  }
}

/**
 * The ray caster's shading factor for a surface facing (nx, ny, nz) (unit, towards the camera)
 * under `light`: ambient plus Lambert diffuse (renderScene inlines the same per pixel).
 */
export function lightShade(light: Scene['light'], nx: number, ny: number, nz: number): number {
  const [lx, ly, lz] = light.direction;
  const l = Math.hypot(lx, ly, lz);
  return light.ambient + light.diffuse * Math.max(0, nx * (lx / l) + ny * (ly / l) + nz * (lz / l));
}

/** Options of `renderScene`. */
export interface RenderSceneOptions {
  /** Scene time in seconds (positions moving entities). */
  readonly timeS?: number;
  readonly includeEntities?: boolean;
  readonly maxDepthM?: number;
  /** Render only the static objects (false skips them; entities follow `includeEntities`). */
  readonly includeStatic?: boolean;
  /** When given, only pixels where it is non-zero are rendered; the rest stay 0 (no depth). */
  readonly pixelMask?: Uint8Array;
  /** Paint the sky where nothing is hit (default true; false leaves those pixels black). */
  readonly sky?: boolean;
  /** Per pixel, surfaces nearer than this camera depth (metres) are passed through (0: none). */
  readonly minDepthM?: Float32Array;
}

const TILE = 16;

/** Bounding sphere of a primitive (centre x, y, z, radius), or undefined for unbounded planes. */
function boundingSphere(p: Primitive): [number, number, number, number] | undefined {
  const s = p.shape;
  const o: Vec3 = [p.offX, p.offY, p.offZ];
  switch (s.type) {
    case 'plane':
      return undefined;
    case 'sphere':
      return [s.center[0] + o[0], s.center[1] + o[1], s.center[2] + o[2], s.radius];
    case 'cylinder':
      return [
        s.base[0] + o[0],
        s.base[1] + s.height / 2 + o[1],
        s.base[2] + o[2],
        Math.hypot(s.radius, s.height / 2),
      ];
    case 'box':
      return [
        s.center[0] + o[0],
        s.center[1] + o[1],
        s.center[2] + o[2],
        Math.hypot(s.size[0], s.size[1], s.size[2]) / 2,
      ];
  }
}

/** Edges of a box as pairs of corner indices (corner bits: x, y, z). */
const BOX_EDGES = [0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 1, 3, 4, 6, 5, 7, 0, 4, 1, 5, 2, 6, 3, 7];
const boxCorners = new Float64Array(24);

/**
 * Pixel bounds [u0, u1, v0, v1] of a box's (or a cylinder's bounding box's) part in front of the
 * camera, or undefined when none of it is: the part is the box clipped by the plane z = EPS, a
 * convex hull of the corners in front and the edges' crossings of that plane, and its image lies
 * within the images of those points. Rounded outwards by a pixel.
 */
function boxExtent(p: Primitive, pose: Pose, k: Intrinsics): [number, number, number, number] | undefined {
  const r = pose.rotation;
  const [px, py, pz] = pose.position;
  const cylinder = p.kind === CYLINDER;
  // Centre and half-extents in the box's frame (a cylinder: the box around it, axis +y).
  const cx = p.ax + p.offX,
    cy = (cylinder ? p.ay + p.height / 2 : p.ay) + p.offY,
    cz = p.az + p.offZ;
  const hx = cylinder ? p.radius : p.vx,
    hy = cylinder ? p.height / 2 : p.vy,
    hz = cylinder ? p.radius : p.vz;
  const c = p.cosY,
    sn = p.sinY;
  for (let i = 0; i < 8; i++) {
    const lx = i & 1 ? hx : -hx;
    const ly = i & 2 ? hy : -hy;
    const lz = i & 4 ? hz : -hz;
    // Box frame to world: rotate by +rotationY about +y (the inverse of intersect's).
    const wx = cx + c * lx + sn * lz - px;
    const wy = cy + ly - py;
    const wz = cz - sn * lx + c * lz - pz;
    boxCorners[i * 3] = r[0] * wx + r[3] * wy + r[6] * wz;
    boxCorners[i * 3 + 1] = r[1] * wx + r[4] * wy + r[7] * wz;
    boxCorners[i * 3 + 2] = r[2] * wx + r[5] * wy + r[8] * wz;
  }
  let u0 = Number.POSITIVE_INFINITY,
    u1 = Number.NEGATIVE_INFINITY,
    v0 = Number.POSITIVE_INFINITY,
    v1 = Number.NEGATIVE_INFINITY;
  const add = (x: number, y: number, z: number) => {
    const u = (k.fx * x) / z + k.cx;
    const v = (k.fy * y) / z + k.cy;
    if (u < u0) u0 = u;
    if (u > u1) u1 = u;
    if (v < v0) v0 = v;
    if (v > v1) v1 = v;
  };
  for (let i = 0; i < 8; i++) {
    const z = boxCorners[i * 3 + 2]!;
    if (z > EPS) add(boxCorners[i * 3]!, boxCorners[i * 3 + 1]!, z);
  }
  for (let e = 0; e < BOX_EDGES.length; e += 2) {
    const a = BOX_EDGES[e]! * 3;
    const b = BOX_EDGES[e + 1]! * 3;
    const za = boxCorners[a + 2]!;
    const zb = boxCorners[b + 2]!;
    if (za > EPS === zb > EPS) continue;
    const f = (EPS - za) / (zb - za);
    add(
      boxCorners[a]! + (boxCorners[b]! - boxCorners[a]!) * f,
      boxCorners[a + 1]! + (boxCorners[b + 1]! - boxCorners[a + 1]!) * f,
      EPS,
    );
  }
  if (u0 > u1) return undefined;
  return [Math.floor(u0) - 1, Math.ceil(u1) + 1, Math.floor(v0) - 1, Math.ceil(v1) + 1];
}

/**
 * Screen-tile culling: for each 16×16 tile, the bounded primitives whose projected bounding sphere
 * (and, for boxes and cylinders, the outline of their part in front of the camera: boxExtent) may
 * touch it; planes go to `always`. Cuts per-pixel work from all primitives to the few nearby.
 */
function tileLists(
  prims: readonly Primitive[],
  pose: Pose,
  k: Intrinsics,
): { always: Primitive[]; tiles: Primitive[][]; tileNear: Float64Array[]; tilesX: number } {
  const tilesX = Math.ceil(k.width / TILE);
  const tilesY = Math.ceil(k.height / TILE);
  const lists: { p: Primitive; near: number }[][] = Array.from({ length: tilesX * tilesY }, () => []);
  const always: Primitive[] = [];
  const r = pose.rotation;
  const [px, py, pz] = pose.position;
  for (const p of prims) {
    const b = boundingSphere(p);
    if (!b) {
      always.push(p);
      continue;
    }
    const dx = b[0] - px;
    const dy = b[1] - py;
    const dz = b[2] - pz;
    const x = r[0] * dx + r[3] * dy + r[6] * dz;
    const y = r[1] * dx + r[4] * dy + r[7] * dz;
    const z = r[2] * dx + r[5] * dy + r[8] * dz;
    const rad = b[3];
    let u0 = 0;
    let u1 = k.width - 1;
    let v0 = 0;
    let v1 = k.height - 1;
    if (z + rad <= 0) continue; // wholly behind the camera
    if (z - rad > 1e-3) {
      // Conservative projected extent of the sphere.
      const zn = z - rad;
      u0 = Math.floor(k.fx * (x / z - rad / zn) + k.cx);
      u1 = Math.ceil(k.fx * (x / z + rad / zn) + k.cx);
      v0 = Math.floor(k.fy * (y / z - rad / zn) + k.cy);
      v1 = Math.ceil(k.fy * (y / z + rad / zn) + k.cy);
      if (u1 < 0 || v1 < 0 || u0 >= k.width || v0 >= k.height) continue;
    }
    // Boxes and cylinders: their own outline is far tighter than their sphere's (a room's wall, a trunk).
    if (p.kind === BOX || p.kind === CYLINDER) {
      const e = boxExtent(p, pose, k);
      if (e === undefined) continue; // wholly behind the camera
      u0 = Math.max(u0, e[0]);
      u1 = Math.min(u1, e[1]);
      v0 = Math.max(v0, e[2]);
      v1 = Math.min(v1, e[3]);
      if (u1 < 0 || v1 < 0 || u0 >= k.width || v0 >= k.height || u0 > u1 || v0 > v1) continue;
    }
    const t0x = Math.max(0, Math.floor(u0 / TILE));
    const t1x = Math.min(tilesX - 1, Math.floor(u1 / TILE));
    const t0y = Math.max(0, Math.floor(v0 / TILE));
    const t1y = Math.min(tilesY - 1, Math.floor(v1 / TILE));
    // No point of the sphere lies nearer than this camera depth (a ray's t is its camera depth).
    const near = z - rad;
    for (let ty = t0y; ty <= t1y; ty++)
      for (let tx = t0x; tx <= t1x; tx++) lists[ty * tilesX + tx]!.push({ p, near });
  }
  // Nearest first, so a ray can stop at the first primitive that cannot come nearer than its hit.
  for (const l of lists) l.sort((a, b) => a.near - b.near);
  const tiles = lists.map((l) => l.map((e) => e.p));
  const tileNear = lists.map((l) => Float64Array.from(l, (e) => e.near));
  return { always, tiles, tileNear, tilesX };
}

/**
 * Ray-casts a scene at a camera pose to RGB + metric depth + a mask of moving entities. Pure and
 * deterministic: the ground truth for tests and the eval. Shading is view-independent (Lambert +
 * ambient), so a perfect memory can reproduce any view exactly.
 */
export function renderScene(
  scene: Scene,
  pose: Pose,
  k: Intrinsics,
  opts: RenderSceneOptions = {},
): GroundTruthFrame {
  const { width, height } = k;
  const prims = primitivesAt(
    scene,
    opts.timeS ?? 0,
    opts.includeEntities ?? true,
    opts.includeStatic ?? true,
  );
  const { always, tiles, tileNear, tilesX } = tileLists(prims, pose, k);
  const pixelMask = opts.pixelMask;
  const minDepth = opts.minDepthM;
  const drawSky = opts.sky ?? true;
  const maxDepth = opts.maxDepthM ?? 100;
  const rgb = new Uint8Array(width * height * 3);
  const depth = new Float32Array(width * height);
  const dynamicMask = new Uint8Array(width * height);
  const r = pose.rotation;
  const [ox, oy, oz] = pose.position;
  const L = scene.light.direction;
  const ll = Math.hypot(L[0], L[1], L[2]);
  const lx = L[0] / ll;
  const ly = L[1] / ll;
  const lz = L[2] / ll;
  const albedo = new Float64Array(3);
  const nLocal = new Float64Array(3);
  const pLocal = new Float64Array(3);
  // Locals for what every pixel reads (property loads are not free in the per-pixel loop).
  const r0 = r[0],
    r1 = r[1],
    r2 = r[2],
    r3 = r[3],
    r4 = r[4],
    r5 = r[5],
    r6 = r[6],
    r7 = r[7],
    r8 = r[8];
  const { fx, fy, cx, cy } = k;
  const [zr, zg, zb] = scene.sky.zenith;
  const [hr, hg, hb] = scene.sky.horizon;
  const { ambient, diffuse } = scene.light;
  for (let row = 0; row < height; row++) {
    const cyr = (row - cy) / fy;
    const tileRow = ((row / TILE) | 0) * tilesX;
    for (let col = 0; col < width; col++) {
      const i = row * width + col;
      if (pixelMask !== undefined && pixelMask[i] === 0) continue;
      const ti = tileRow + ((col / TILE) | 0);
      const tile = tiles[ti]!;
      // Nothing to hit and no sky to paint (the entities' pass over tiles without one).
      if (!drawSky && tile.length === 0 && always.length === 0) continue;
      const cxr = (col - cx) / fx;
      // Camera ray (cxr, cyr, 1) in world: its parameter t is the camera depth z directly.
      const dx = r0 * cxr + r1 * cyr + r2;
      const dy = r3 * cxr + r4 * cyr + r5;
      const dz = r6 * cxr + r7 * cyr + r8;
      let best = maxDepth;
      let hit: Primitive | undefined;
      const tMin = minDepth === undefined ? EPS : Math.max(EPS, minDepth[i]!);
      for (let j = 0; j < always.length; j++) {
        const t = intersect(always[j]!, ox, oy, oz, dx, dy, dz, tMin, false);
        if (t < best) {
          best = t;
          hit = always[j]!;
        }
      }
      const near = tileNear[ti]!;
      for (let j = 0; j < tile.length; j++) {
        if (near[j]! >= best) break; // this one and the rest lie beyond the hit
        const t = intersect(tile[j]!, ox, oy, oz, dx, dy, dz, tMin, false);
        if (t < best) {
          best = t;
          hit = tile[j]!;
        }
      }
      // The winner's hit point and normal, by intersecting it once more: cheaper than keeping
      // every nearer candidate's on the way.
      if (hit) {
        intersect(hit, ox, oy, oz, dx, dy, dz, tMin, true);
        nLocal[0] = hitNormal[0]!;
        nLocal[1] = hitNormal[1]!;
        nLocal[2] = hitNormal[2]!;
        pLocal[0] = hitLocal[0]!;
        pLocal[1] = hitLocal[1]!;
        pLocal[2] = hitLocal[2]!;
      }
      if (!hit) {
        if (drawSky === false) continue;
        const len = Math.sqrt(dx * dx + dy * dy + dz * dz);
        const up = Math.max(0, dy / len);
        rgb[i * 3] = hr + (zr - hr) * up;
        rgb[i * 3 + 1] = hg + (zg - hg) * up;
        rgb[i * 3 + 2] = hb + (zb - hb) * up;
        continue;
      }
      depth[i] = best;
      dynamicMask[i] = hit.dynamic ? 1 : 0;
      // The ray in the primitive's local frame (boxes rotate about y), for the incidence angle.
      let ldx = dx;
      const ldy = dy;
      let ldz = dz;
      if (hit.kind === BOX) {
        ldx = hit.cosY * dx - hit.sinY * dz;
        ldz = hit.sinY * dx + hit.cosY * dz;
      }
      // Texture in the face plane: drop the dominant axis of the local normal.
      const ax = Math.abs(nLocal[0]!);
      const ay = Math.abs(nLocal[1]!);
      const az = Math.abs(nLocal[2]!);
      let u: number;
      let v: number;
      if (ay >= ax && ay >= az) {
        u = pLocal[0]!;
        v = pLocal[2]!;
      } else if (ax >= az) {
        u = pLocal[2]!;
        v = pLocal[1]!;
      } else {
        u = pLocal[0]!;
        v = pLocal[1]!;
      }
      // One pixel's footprint on the surface: grows with distance and with grazing angles.
      const dl = Math.sqrt(dx * dx + dy * dy + dz * dz); // not Math.hypot: several times slower in V8
      const cosIncidence = Math.abs(nLocal[0]! * ldx + nLocal[1]! * ldy + nLocal[2]! * ldz) / dl;
      const footprint = (best * dl) / fx / Math.max(0.3, cosIncidence);
      sampleMaterial(hit.material, u, v, albedo, footprint);
      // World normal (boxes rotate about y); face it towards the camera for two-sided lighting.
      let nx = nLocal[0]!;
      let nz = nLocal[2]!;
      if (hit.kind === BOX) {
        const wx = hit.cosY * nx + hit.sinY * nz;
        const wz = -hit.sinY * nx + hit.cosY * nz;
        nx = wx;
        nz = wz;
      }
      let ny = nLocal[1]!;
      if (nx * dx + ny * dy + nz * dz > 0) {
        nx = -nx;
        ny = -ny;
        nz = -nz;
      }
      const shade = ambient + diffuse * Math.max(0, nx * lx + ny * ly + nz * lz);
      rgb[i * 3] = Math.min(255, albedo[0]! * shade);
      rgb[i * 3 + 1] = Math.min(255, albedo[1]! * shade);
      rgb[i * 3 + 2] = Math.min(255, albedo[2]! * shade);
    }
  }
  return { width, height, rgb, depth, dynamicMask };
}

/**
 * Whether world point (x, y, z) lies inside a shape placed at `offset`, with the shape shrunk by
 * `shrinkM` on every side (so surfaces touching it do not count; a negative `shrinkM` grows it).
 * A plane's inside is the half-space behind it.
 */
export function insideShape(
  shape: SceneShape,
  offset: Vec3,
  x: number,
  y: number,
  z: number,
  shrinkM = 0,
): boolean {
  switch (shape.type) {
    case 'plane': {
      const [nx, ny, nz] = shape.normal;
      const along =
        ((x - shape.point[0] - offset[0]) * nx +
          (y - shape.point[1] - offset[1]) * ny +
          (z - shape.point[2] - offset[2]) * nz) /
        Math.hypot(nx, ny, nz);
      return along < -shrinkM;
    }
    case 'sphere': {
      const dx = x - shape.center[0] - offset[0];
      const dy = y - shape.center[1] - offset[1];
      const dz = z - shape.center[2] - offset[2];
      const r = shape.radius - shrinkM;
      return r > 0 && dx * dx + dy * dy + dz * dz < r * r;
    }
    case 'cylinder': {
      const dx = x - shape.base[0] - offset[0];
      const dy = y - shape.base[1] - offset[1];
      const dz = z - shape.base[2] - offset[2];
      const r = shape.radius - shrinkM;
      return r > 0 && dy > shrinkM && dy < shape.height - shrinkM && dx * dx + dz * dz < r * r;
    }
    case 'box': {
      const tx = x - shape.center[0] - offset[0];
      const ty = y - shape.center[1] - offset[1];
      const tz = z - shape.center[2] - offset[2];
      const a = (shape.rotationYDeg * Math.PI) / 180;
      const lx = Math.cos(a) * tx - Math.sin(a) * tz;
      const lz = Math.sin(a) * tx + Math.cos(a) * tz;
      return (
        Math.abs(lx) < shape.size[0] / 2 - shrinkM &&
        Math.abs(ty) < shape.size[1] / 2 - shrinkM &&
        Math.abs(lz) < shape.size[2] / 2 - shrinkM
      );
    }
  }
}

/**
 * Ghost voxels: memory points inside a moving entity's volume at any of `timesS` (shrunk by
 * `shrinkM`), i.e. moving things that leaked into the static memory. A point on a static surface
 * (within `shrinkM` of a static object) is not one, even where an entity's path crosses that
 * object (the hall's walker passes through two pillars).
 */
export function countGhostPoints(
  scene: Scene,
  points: Iterable<Vec3>,
  timesS: readonly number[],
  shrinkM: number,
): number {
  const placed = scene.entities.flatMap((e) =>
    timesS.map((t) => ({ shape: e.shape, offset: entityPosition(e, t) })),
  );
  const still: Vec3 = [0, 0, 0];
  let ghosts = 0;
  for (const p of points) {
    if (!placed.some((e) => insideShape(e.shape, e.offset, p[0], p[1], p[2], shrinkM))) continue;
    if (scene.objects.some((o) => insideShape(o, still, p[0], p[1], p[2], -shrinkM))) continue;
    ghosts++;
  }
  return ghosts;
}
