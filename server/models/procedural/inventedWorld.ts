import type { Intrinsics } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { cellHash, mulberry32 } from '../../../shared/math/random.ts';
import type { Vec3 } from '../../../shared/math/vec3.ts';
import { insideShape, lightShade } from '../../scene/rayCaster.ts';
import type { Scene, SceneEntity, SceneMaterial, SceneShape } from '../../scene/sceneFormat.ts';
import type { ConditioningFrame, MemoryViewImage } from '../worldModel.ts';
import {
  continueMaterial,
  distanceToWall,
  type FittedWall,
  fitWalls,
  floorColour,
  meanColourWhere,
  percentile,
  type RememberedPoints,
} from './continuation.ts';
import { propShapes } from './props.ts';
import { lightMaterials, type Rgb, type WorldStyle } from './style.ts';

/** What the model reads off the memory views before inventing: the surfaces it should extend. */
export interface SceneFit {
  /** Floor height, metres (world y). */
  readonly floorY: number;
  /** Indoor: wall extents in x and z and the ceiling height; undefined outdoors. */
  readonly room?: {
    readonly minX: number;
    readonly maxX: number;
    readonly minZ: number;
    readonly maxZ: number;
    readonly ceilingY: number;
  };
  /** How many memory points the fit used (0 = nothing seen: defaults from the camera). */
  readonly samples: number;
  /**
   * Points the conditioning shows to be bare floor or empty space (the memory's known free space
   * below prop height), flat x, y, z, by EVIDENCE_CELL_M cell (key `x,z`): a prop that would
   * contain one is not invented.
   */
  readonly shownEmpty: ReadonlyMap<string, readonly number[]>;
  /** Outdoors: the walls the memory shows, continued (see continuation.ts). */
  readonly walls: readonly FittedWall[];
  /** The remembered floor's mean colour, where the conditioning shows enough of it. */
  readonly floorColour?: Rgb;
  /** Indoors: each room wall's (−x, +x, −z, +z) and the ceiling's remembered mean colour, where seen. */
  readonly roomColours?: { readonly walls: readonly (Rgb | undefined)[]; readonly ceiling?: Rgb };
}

const EYE_HEIGHT_M = 1.6;
/** Above the tallest prop the model invents (a tree: up to 5.3 m) empty space rules nothing out. */
const MAX_PROP_HEIGHT_M = 6;
/** How far beyond the known free space invented walls stand (a free-space cell and a bit). */
const WALL_BEYOND_FREE_M = 0.25;
const MIN_FIT_SAMPLES = 200;

/**
 * Fits the floor (and, indoors, the walls and ceiling) to the memory points visible in the clip's
 * memory views: low percentiles of height for the floor, extreme percentiles of x/z for walls.
 * O(sampled pixels).
 */
export function fitScene(
  poses: readonly Pose[],
  k: Intrinsics,
  views: readonly MemoryViewImage[],
  indoor: boolean,
  seed: number,
  frames: readonly ConditioningFrame[] = [],
): SceneFit {
  const xs: number[] = [];
  const ys: number[] = [];
  const zs: number[] = [];
  const pts: RememberedPoints = { x: xs, y: ys, z: zs, r: [], g: [], b: [] };
  const collect = (pose: Pose, fk: Intrinsics, depth: Float32Array, rgb: Uint8Array, step: number): void => {
    const r = pose.rotation;
    const [rs, gs, bs] = [pts.r as number[], pts.g as number[], pts.b as number[]];
    for (let p = 0; p < depth.length; p += step) {
      const d = depth[p]!;
      if (!(d > 0)) continue;
      const cx = (((p % fk.width) - fk.cx) / fk.fx) * d;
      const cy = ((Math.floor(p / fk.width) - fk.cy) / fk.fy) * d;
      xs.push(r[0] * cx + r[1] * cy + r[2] * d + pose.position[0]);
      ys.push(r[3] * cx + r[4] * cy + r[5] * d + pose.position[1]);
      zs.push(r[6] * cx + r[7] * cy + r[8] * d + pose.position[2]);
      rs.push(rgb[p * 3]!);
      gs.push(rgb[p * 3 + 1]!);
      bs.push(rgb[p * 3 + 2]!);
    }
  };
  views.forEach((v, i) => {
    collect(poses[i]!, k, v.depth, v.rgb, 37);
  });
  // Known free space: where each ray's free stretch ends must stay inside any room, and no prop may
  // stand on the way (sampled every metre below prop height).
  const free = { minX: Infinity, maxX: -Infinity, minZ: Infinity, maxZ: -Infinity, maxY: -Infinity };
  const freeAlong: number[] = [];
  views.forEach((v, i) => {
    if (!v.freeDepth) return;
    const pose = poses[i]!;
    const r = pose.rotation;
    const [px, py, pz] = pose.position;
    for (let p = 0; p < v.freeDepth.length; p += 37) {
      const fd = v.freeDepth[p]!;
      if (!(fd > 0)) continue;
      const cx = ((p % k.width) - k.cx) / k.fx;
      const cy = (Math.floor(p / k.width) - k.cy) / k.fy;
      const dx = r[0] * cx + r[1] * cy + r[2];
      const dy = r[3] * cx + r[4] * cy + r[5];
      const dz = r[6] * cx + r[7] * cy + r[8];
      const x = px + dx * fd;
      const y = py + dy * fd;
      const z = pz + dz * fd;
      free.minX = Math.min(free.minX, x);
      free.maxX = Math.max(free.maxX, x);
      free.minZ = Math.min(free.minZ, z);
      free.maxZ = Math.max(free.maxZ, z);
      free.maxY = Math.max(free.maxY, y);
      for (let t = 0.5; t <= fd; t += 1) freeAlong.push(px + dx * t, py + dy * t, pz + dz * t);
    }
  });
  // Reference and preceding frames show ground the target views may not (behind an obstacle, out of frame).
  for (const f of frames) if (f.depth) collect(f.pose, f.intrinsics, f.depth, f.rgb, 53);
  const anchor = poses[0]!.position;
  const rand = mulberry32(seed ^ 0x5bd1e995);
  const samples = ys.length;
  const sy = Float64Array.from(ys).sort();
  const floorY = samples >= MIN_FIT_SAMPLES ? percentile(sy, 0.03) : anchor[1] - EYE_HEIGHT_M;
  const shownEmpty = new Map<string, number[]>();
  const evidence = (x: number, y: number, z: number): void => {
    const key = evidenceCellKey(x, z);
    const list = shownEmpty.get(key);
    if (list) list.push(x, y, z);
    else shownEmpty.set(key, [x, y, z]);
  };
  // Floor seen is tested a little above it: inside whatever would stand there.
  for (let i = 0; i < samples; i++)
    if (ys[i]! < floorY + FLOOR_EVIDENCE_M) evidence(xs[i]!, floorY + FLOOR_TEST_HEIGHT_M, zs[i]!);
  for (let i = 0; i < freeAlong.length; i += 3)
    if (freeAlong[i + 1]! < floorY + MAX_PROP_HEIGHT_M)
      evidence(freeAlong[i]!, freeAlong[i + 1]!, freeAlong[i + 2]!);
  const seenFloor = samples >= MIN_FIT_SAMPLES ? floorColour(pts, floorY) : undefined;
  const floorSeen = seenFloor ? { floorColour: seenFloor } : {};
  if (!indoor) {
    // A memory view's uncovered pixel is unknown; a frame's pixel without depth is sky, seen empty.
    const seenBy = [
      ...views.map((v, i) => ({ pose: poses[i]!, k, depth: v.depth, skyIsSeen: false })),
      ...frames.flatMap((f) =>
        f.depth ? [{ pose: f.pose, k: f.intrinsics, depth: f.depth, skyIsSeen: true }] : [],
      ),
    ];
    // Seen: inside a frame and not hidden there, or shown empty (a free ray passed close by).
    const seen = (x: number, y: number, z: number) =>
      seenBy.some((f) => seesPoint(f.pose, f.k, f.depth, f.skyIsSeen, x, y, z)) ||
      shownEmptyNear(shownEmpty, x, y, z);
    const walls = samples >= MIN_FIT_SAMPLES ? fitWalls(pts, floorY, [anchor[0], anchor[2]], seen) : [];
    return { floorY, samples, shownEmpty, walls, ...floorSeen };
  }
  const sx = Float64Array.from(xs).sort();
  const sz = Float64Array.from(zs).sort();
  const half = () => 3 + rand() * 3;
  const seen = samples >= MIN_FIT_SAMPLES;
  // Walls go where the memory's extreme points are, never closer than 2 m to the player, and
  // beyond all known free space.
  const m = WALL_BEYOND_FREE_M;
  const minX = Math.min(seen ? percentile(sx, 0.01) : anchor[0] - half(), anchor[0] - 2, free.minX - m);
  const maxX = Math.max(seen ? percentile(sx, 0.99) : anchor[0] + half(), anchor[0] + 2, free.maxX + m);
  const minZ = Math.min(seen ? percentile(sz, 0.01) : anchor[2] - half(), anchor[2] - 2, free.minZ - m);
  const maxZ = Math.max(seen ? percentile(sz, 0.99) : anchor[2] + half(), anchor[2] + 2, free.maxZ + m);
  const ceilingY = Math.max(seen ? percentile(sy, 0.995) : floorY + 3, anchor[1] + 0.6, free.maxY + m);
  // The colours of the remembered walls (points above the floor within ROOM_FACE_M of each face) and ceiling.
  const wallPoint = (i: number) => ys[i]! > floorY + 0.6 && ys[i]! < ceilingY - 0.3;
  const near = (v: number, face: number) => Math.abs(v - face) <= ROOM_FACE_M;
  const roomColours = seen
    ? {
        walls: [
          meanColourWhere(pts, (i) => wallPoint(i) && near(xs[i]!, minX)),
          meanColourWhere(pts, (i) => wallPoint(i) && near(xs[i]!, maxX)),
          meanColourWhere(pts, (i) => wallPoint(i) && near(zs[i]!, minZ)),
          meanColourWhere(pts, (i) => wallPoint(i) && near(zs[i]!, maxZ)),
        ],
        ...optional(
          'ceiling',
          meanColourWhere(pts, (i) => ys[i]! >= ceilingY - ROOM_FACE_M),
        ),
      }
    : undefined;
  return {
    floorY,
    room: { minX, maxX, minZ, maxZ, ceilingY },
    samples,
    shownEmpty,
    walls: [],
    ...floorSeen,
    ...optional('roomColours', roomColours),
  };
}

/**
 * Whether a frame saw world point (x, y, z): it projects inside the image (SEEN_MARGIN_PX from its
 * edges), in front of the camera, and not behind the surface the frame shows at that pixel; a pixel
 * without depth saw the point where it is sky (`skyIsSeen`: a frame), not where it is unknown (a
 * memory view).
 */
function seesPoint(
  pose: Pose,
  k: Intrinsics,
  depth: Float32Array,
  skyIsSeen: boolean,
  x: number,
  y: number,
  z: number,
): boolean {
  const r = pose.rotation;
  const dx = x - pose.position[0];
  const dy = y - pose.position[1];
  const dz = z - pose.position[2];
  const cz = r[2] * dx + r[5] * dy + r[8] * dz;
  if (cz < 0.1) return false;
  const u = Math.round((k.fx * (r[0] * dx + r[3] * dy + r[6] * dz)) / cz + k.cx);
  const v = Math.round((k.fy * (r[1] * dx + r[4] * dy + r[7] * dz)) / cz + k.cy);
  if (
    u < SEEN_MARGIN_PX ||
    v < SEEN_MARGIN_PX ||
    u >= k.width - SEEN_MARGIN_PX ||
    v >= k.height - SEEN_MARGIN_PX
  )
    return false;
  const d = depth[v * k.width + u]!;
  return d > 0 ? d > cz - SEEN_BEHIND_M : skyIsSeen;
}
const SEEN_MARGIN_PX = 4;

/** Whether empty-space evidence lies within EMPTY_NEAR_M across and EMPTY_NEAR_Y_M up or down of a point. */
function shownEmptyNear(
  shownEmpty: ReadonlyMap<string, readonly number[]>,
  x: number,
  y: number,
  z: number,
): boolean {
  return anyEvidenceIn(
    shownEmpty,
    x - EMPTY_NEAR_M,
    z - EMPTY_NEAR_M,
    x + EMPTY_NEAR_M,
    z + EMPTY_NEAR_M,
    (ex, ey, ez) =>
      Math.abs(ex - x) <= EMPTY_NEAR_M &&
      Math.abs(ez - z) <= EMPTY_NEAR_M &&
      Math.abs(ey - y) <= EMPTY_NEAR_Y_M,
  );
}

/** Whether `test` holds for an evidence point in the cells that cover [x0, x1] × [z0, z1]. */
function anyEvidenceIn(
  shownEmpty: ReadonlyMap<string, readonly number[]>,
  x0: number,
  z0: number,
  x1: number,
  z1: number,
  test: (x: number, y: number, z: number) => boolean,
): boolean {
  for (let cx = Math.floor(x0 / EVIDENCE_CELL_M); cx <= Math.floor(x1 / EVIDENCE_CELL_M); cx++)
    for (let cz = Math.floor(z0 / EVIDENCE_CELL_M); cz <= Math.floor(z1 / EVIDENCE_CELL_M); cz++) {
      const list = shownEmpty.get(`${cx},${cz}`);
      if (!list) continue;
      for (let i = 0; i < list.length; i += 3) if (test(list[i]!, list[i + 1]!, list[i + 2]!)) return true;
    }
  return false;
}
const EMPTY_NEAR_M = 0.35;
const EMPTY_NEAR_Y_M = 0.6;
/** A point this far behind the surface a frame shows was hidden from it. */
const SEEN_BEHIND_M = 0.3;

/** A remembered point within this of a fitted room face belongs to it (colours). */
const ROOM_FACE_M = 0.3;

/** `{ [key]: value }`, or nothing when value is undefined (optional fields stay absent). */
const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

const evidenceCellKey = (x: number, z: number): string =>
  `${Math.floor(x / EVIDENCE_CELL_M)},${Math.floor(z / EVIDENCE_CELL_M)}`;

/** Evidence points are kept in cells this wide, for finding those under a prop. */
const EVIDENCE_CELL_M = 1;
/** A remembered point this close to the floor is floor (a rock's flank a few centimetres up is not). */
const FLOOR_EVIDENCE_M = 0.05;
/** Where the floor was seen, this high above it must be empty. */
const FLOOR_TEST_HEIGHT_M = 0.12;
/** Evidence must lie this far inside a prop to rule it out (the memory's points are a few centimetres off). */
const EVIDENCE_INSIDE_M = 0.05;
/** Props keep this far from every target camera. */
const CAMERA_CLEARANCE_M = 0.5;

/**
 * Whether a prop's shapes may be invented: no target camera within CAMERA_CLEARANCE_M of them and
 * nothing the conditioning shows to be floor or empty space inside them. The test is per shape, not
 * per 3 m cell: a cell's floor seen beside a rock used to take the rock out of the next clip while
 * the memory kept the half already seen.
 */
function mayInvent(shapes: readonly SceneShape[], fit: SceneFit, poses: readonly Pose[]): boolean {
  const still: Vec3 = [0, 0, 0];
  for (const shape of shapes) {
    for (const p of poses) {
      const [x, y, z] = p.position;
      if (insideShape(shape, still, x, y, z, -CAMERA_CLEARANCE_M)) return false;
    }
    const [lo, hi] = shapeBounds(shape);
    // A fence panel or a lamp pole is thinner than the margin: half its own thickness instead.
    const shrink = Math.min(EVIDENCE_INSIDE_M, thinnestHalf(shape) / 2);
    if (
      anyEvidenceIn(fit.shownEmpty, lo[0], lo[2], hi[0], hi[2], (x, y, z) =>
        insideShape(shape, still, x, y, z, shrink),
      )
    )
      return false;
  }
  return true;
}

/** Half the thinnest dimension of a shape (planes: infinite). */
function thinnestHalf(s: SceneShape): number {
  switch (s.type) {
    case 'box':
      return Math.min(...s.size) / 2;
    case 'cylinder':
      return Math.min(s.radius, s.height / 2);
    case 'sphere':
      return s.radius;
    case 'plane':
      return Number.POSITIVE_INFINITY;
  }
}

/** An axis-aligned box around a shape (x, z as placed; boxes by their diagonal). */
function shapeBounds(s: SceneShape): [Vec3, Vec3] {
  switch (s.type) {
    case 'sphere':
      return [
        [s.center[0] - s.radius, s.center[1] - s.radius, s.center[2] - s.radius],
        [s.center[0] + s.radius, s.center[1] + s.radius, s.center[2] + s.radius],
      ];
    case 'cylinder':
      return [
        [s.base[0] - s.radius, s.base[1], s.base[2] - s.radius],
        [s.base[0] + s.radius, s.base[1] + s.height, s.base[2] + s.radius],
      ];
    case 'box': {
      const r = Math.hypot(s.size[0], s.size[2]) / 2;
      return [
        [s.center[0] - r, s.center[1] - s.size[1] / 2, s.center[2] - r],
        [s.center[0] + r, s.center[1] + s.size[1] / 2, s.center[2] + r],
      ];
    }
    case 'plane':
      return [
        [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY],
        [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
      ];
  }
}

/** Tints a material's colours by up to ±12% (seeded), so each prompt dresses its inventions a little differently. */
function tint(mat: SceneMaterial, rand: () => number): SceneMaterial {
  const f = (c: readonly number[]): [number, number, number] => {
    const k = 0.88 + rand() * 0.24;
    return [Math.min(255, c[0]! * k), Math.min(255, c[1]! * k), Math.min(255, c[2]! * k)];
  };
  return { ...mat, color: f(mat.color), color2: f(mat.color2 ?? mat.color) };
}

/** The light every invented world is shaded with. */
const INVENTED_LIGHT = { direction: [0.4, 1, 0.3] as [number, number, number], ambient: 0.5, diffuse: 0.55 };

/** The ray caster's shading factor for a surface facing (nx, ny, nz) under INVENTED_LIGHT. */
const shadeOf = (nx: number, ny: number, nz: number): number => lightShade(INVENTED_LIGHT, nx, ny, nz);

/** Thickness of a continued outdoor wall (behind its face). */
const CONTINUED_WALL_THICKNESS_M = 0.3;

const PROP_CELL_M = 3;
const ENTITY_CELL_M = 10;
const INVENT_RADIUS_M = 24;

/**
 * The world the model invents for one clip, as a scene in Spatia's own scene format: the fitted
 * floor (and room), walls continued from the memory, props in 3 m cells around the player placed by
 * the prompt (the same in every clip; left out where the conditioning shows the space empty or a
 * target camera is within CAMERA_CLEARANCE_M), and moving entities anchored to 10 m cells whose
 * motion depends only on the prompt and world time (so they move continuously from clip to clip).
 */
export function inventWorld(
  style: WorldStyle,
  fit: SceneFit,
  poses: readonly Pose[],
  seed: number,
  promptHash: number,
  worldSeed = 0,
): Scene {
  // Props and their colours are placed by the world (its seed and prompt), not the clip's seed: a
  // prop half seen in one clip is whole in the next (with a seed per clip, the memory kept halves of
  // props the next clip did not invent: half crowns, cut rocks).
  const place = cellHash(promptHash, worldSeed, 0x2545f491);
  const rand = mulberry32(place);
  const materials: Record<string, SceneMaterial> = {
    floor: tint(style.floor, rand),
    wall: tint(style.wall, rand),
    ceiling: tint(style.ceiling, rand),
  };
  // What the memory shows keeps its colour: the style's pattern, the remembered average.
  if (fit.floorColour)
    materials.floor = continueMaterial(materials.floor!, fit.floorColour, shadeOf(0, 1, 0));
  style.props.forEach((p, i) => {
    materials[`prop${i}`] = tint(p, rand);
  });
  style.entities.forEach((e, i) => {
    materials[`entity${i}`] = e;
  });
  if (style.trees) {
    materials.trunk = tint(style.trees.trunk, rand);
    materials.crown = tint(style.trees.crown, rand);
  }
  // Built props (after the others: their tints do not move the draws above).
  const st = style.structures;
  materials.houseWall = tint(style.wall, rand);
  materials.roof = tint(st.roof, rand);
  materials.door = tint(st.door, rand);
  materials.fence = tint(st.fence, rand);
  materials.pole = st.pole;
  materials.rock = tint(st.rock, rand);
  const lights = lightMaterials(style.lit);
  materials.window = lights.window;
  materials.lampHead = lights.lampHead;
  const objects: SceneShape[] = [
    { type: 'plane', point: [0, fit.floorY, 0], normal: [0, 1, 0], material: 'floor' },
  ];
  const room = fit.room;
  if (room) {
    const h = room.ceilingY - fit.floorY;
    const cx = (room.minX + room.maxX) / 2;
    const cz = (room.minZ + room.maxZ) / 2;
    const w = room.maxX - room.minX;
    const d = room.maxZ - room.minZ;
    const t = 0.1;
    const y = fit.floorY + h / 2;
    // Each face seen in the memory gets its own colour; faces lit towards the camera (normals inwards).
    const faces = ['wallMinX', 'wallMaxX', 'wallMinZ', 'wallMaxZ'] as const;
    const inward: [number, number][] = [
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
    ];
    faces.forEach((face, i) => {
      const seen = fit.roomColours?.walls[i];
      const [nx, nz] = inward[i]!;
      materials[face] = seen ? continueMaterial(materials.wall!, seen, shadeOf(nx, 0, nz)) : materials.wall!;
    });
    const ceilingSeen = fit.roomColours?.ceiling;
    if (ceilingSeen) materials.ceiling = continueMaterial(materials.ceiling!, ceilingSeen, shadeOf(0, -1, 0));
    objects.push(
      {
        type: 'box',
        center: [cx, room.ceilingY + t / 2, cz],
        size: [w + 2 * t, t, d + 2 * t],
        rotationYDeg: 0,
        material: 'ceiling',
      },
      {
        type: 'box',
        center: [room.minX - t / 2, y, cz],
        size: [t, h, d],
        rotationYDeg: 0,
        material: 'wallMinX',
      },
      {
        type: 'box',
        center: [room.maxX + t / 2, y, cz],
        size: [t, h, d],
        rotationYDeg: 0,
        material: 'wallMaxX',
      },
      {
        type: 'box',
        center: [cx, y, room.minZ - t / 2],
        size: [w, h, t],
        rotationYDeg: 0,
        material: 'wallMinZ',
      },
      {
        type: 'box',
        center: [cx, y, room.maxZ + t / 2],
        size: [w, h, t],
        rotationYDeg: 0,
        material: 'wallMaxZ',
      },
    );
  }
  // Outdoors, the walls the memory shows go on past where it saw them, as high and coloured alike.
  fit.walls.forEach((wall, i) => {
    const material = `continuedWall${i}`;
    materials[material] = continueMaterial(materials.wall!, wall.colour, shadeOf(wall.nx, 0, wall.nz));
    const length = Math.hypot(wall.x1 - wall.x0, wall.z1 - wall.z0);
    const height = wall.topY - fit.floorY;
    // The box's local x runs along the face; it lies behind the face (away from the cameras).
    const tx = (wall.x1 - wall.x0) / length;
    const tz = (wall.z1 - wall.z0) / length;
    objects.push({
      type: 'box',
      center: [
        (wall.x0 + wall.x1) / 2 - (wall.nx * CONTINUED_WALL_THICKNESS_M) / 2,
        fit.floorY + height / 2,
        (wall.z0 + wall.z1) / 2 - (wall.nz * CONTINUED_WALL_THICKNESS_M) / 2,
      ],
      size: [length, height, CONTINUED_WALL_THICKNESS_M],
      rotationYDeg: (Math.atan2(-tz, tx) * 180) / Math.PI,
      material,
    });
  });
  const clearOfWalls = (x: number, z: number, r: number): boolean =>
    fit.walls.every((w) => distanceToWall(w, x, z) > r + 0.3);
  const anchor: Vec3 = poses[0]!.position;
  const inside = (x: number, z: number): boolean =>
    !room || (x > room.minX + 0.5 && x < room.maxX - 0.5 && z > room.minZ + 0.5 && z < room.maxZ - 0.5);
  const c0x = Math.floor((anchor[0] - INVENT_RADIUS_M) / PROP_CELL_M);
  const c1x = Math.floor((anchor[0] + INVENT_RADIUS_M) / PROP_CELL_M);
  const c0z = Math.floor((anchor[2] - INVENT_RADIUS_M) / PROP_CELL_M);
  const c1z = Math.floor((anchor[2] + INVENT_RADIUS_M) / PROP_CELL_M);
  for (let gx = c0x; gx <= c1x; gx++) {
    for (let gz = c0z; gz <= c1z; gz++) {
      const h = cellHash(gx, gz, place);
      if (h / 4294967296 >= style.propDensity) continue;
      const r = mulberry32(h);
      const x = (gx + 0.2 + 0.6 * r()) * PROP_CELL_M;
      const z = (gz + 0.2 + 0.6 * r()) * PROP_CELL_M;
      const size = 0.4 + r() * 1.1;
      // Styles with trees make half their props trees; the others are drawn from the style's kinds.
      const kind = style.trees && r() < 0.5 ? 'tree' : style.kinds[Math.floor(r() * style.kinds.length)]!;
      const material = `prop${Math.floor(r() * style.props.length)}`;
      const shapes = propShapes(kind, x, fit.floorY, z, size, material, r);
      // How far the prop reaches from its centre across the floor (a roof's corner, a crown's edge).
      const reach = Math.max(
        ...shapes.map((s) => {
          const [lo, hi] = shapeBounds(s);
          return Math.max(x - lo[0], hi[0] - x, z - lo[2], hi[2] - z);
        }),
      );
      if (!inside(x, z) || !clearOfWalls(x, z, reach) || !mayInvent(shapes, fit, poses)) continue;
      objects.push(...shapes);
    }
  }
  const entities: SceneEntity[] = [];
  const e0x = Math.floor((anchor[0] - INVENT_RADIUS_M) / ENTITY_CELL_M);
  const e1x = Math.floor((anchor[0] + INVENT_RADIUS_M) / ENTITY_CELL_M);
  const e0z = Math.floor((anchor[2] - INVENT_RADIUS_M) / ENTITY_CELL_M);
  const e1z = Math.floor((anchor[2] + INVENT_RADIUS_M) / ENTITY_CELL_M);
  for (let gx = e0x; gx <= e1x; gx++) {
    for (let gz = e0z; gz <= e1z; gz++) {
      const h = cellHash(gx, gz, promptHash ^ 0x1234567);
      if (h / 4294967296 >= 0.6 || style.entities.length === 0) continue;
      const r = mulberry32(h);
      const cx = (gx + 0.3 + 0.4 * r()) * ENTITY_CELL_M;
      const cz = (gz + 0.3 + 0.4 * r()) * ENTITY_CELL_M;
      const radius = 1.5 + r() * 2;
      if (!inside(cx, cz)) continue;
      const points: [number, number, number][] = Array.from(
        { length: 8 },
        (_, i): [number, number, number] => [
          cx + radius * Math.cos((i * Math.PI) / 4),
          fit.floorY,
          cz + radius * Math.sin((i * Math.PI) / 4),
        ],
      );
      const material = `entity${Math.floor(r() * style.entities.length)}`;
      const size = 0.3 + r() * 0.4;
      const shape: SceneEntity['shape'] =
        r() < 0.5
          ? { type: 'sphere', center: [0, size, 0], radius: size, material }
          : { type: 'cylinder', base: [0, 0, 0], radius: size * 0.7, height: 1.2 + r() * 0.6, material };
      entities.push({
        name: `entity-${gx}-${gz}`,
        shape,
        path: { points, speedMps: 0.8 + r() * 0.8, loop: true, startOffsetS: r() * 20 },
      });
    }
  }
  return {
    name: `invented-${style.name}-${seed}`,
    description: 'procedural invention',
    sky: style.sky,
    light: INVENTED_LIGHT,
    materials,
    objects,
    entities,
    spawn: { position: [anchor[0], anchor[1], anchor[2]], yawDeg: 0, pitchDeg: 0 },
    viewpoints: [],
  };
}
