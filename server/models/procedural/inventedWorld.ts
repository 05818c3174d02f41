import type { Intrinsics } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { cellHash, mulberry32 } from '../../../shared/math/random.ts';
import type { Vec3 } from '../../../shared/math/vec3.ts';
import type { Scene, SceneEntity, SceneMaterial, SceneShape } from '../../scene/sceneFormat.ts';
import type { ConditioningFrame, MemoryViewImage } from '../worldModel.ts';
import {
  continueMaterial,
  distanceToWall,
  type FittedWall,
  fitWalls,
  floorColour,
  meanColourWhere,
  type RememberedPoints,
} from './continuation.ts';
import { propReach, propShapes } from './props.ts';
import type { WorldStyle } from './style.ts';

type Rgb = [number, number, number];

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
   * Prop cells (PROP_CELL_M grid, key `x,z`) the conditioning shows to be bare floor or empty
   * space (the memory's known free space below prop height): the model puts no prop there.
   */
  readonly noPropCells: ReadonlySet<string>;
  /** Outdoors: the walls the memory shows, continued (see continuation.ts). */
  readonly walls: readonly FittedWall[];
  /** The remembered floor's mean colour, where the conditioning shows enough of it. */
  readonly floorColour?: Rgb;
  /** Indoors: each room wall's (−x, +x, −z, +z) and the ceiling's remembered mean colour, where seen. */
  readonly roomColours?: { readonly walls: readonly (Rgb | undefined)[]; readonly ceiling?: Rgb };
}

const EYE_HEIGHT_M = 1.6;
/** The tallest prop the model invents (box 2 m, cylinder 3 m, sphere 1.5 m) with a margin. */
const MAX_PROP_HEIGHT_M = 3.2;
/** How far beyond the known free space invented walls stand (a free-space cell and a bit). */
const WALL_BEYOND_FREE_M = 0.25;
const MIN_FIT_SAMPLES = 200;

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))))]!;
}

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
  const noPropCells = new Set<string>();
  for (let i = 0; i < samples; i++) {
    if (ys[i]! < floorY + 0.3) noPropCells.add(propCellKey(xs[i]!, zs[i]!));
  }
  for (let i = 0; i < freeAlong.length; i += 3)
    if (freeAlong[i + 1]! < floorY + MAX_PROP_HEIGHT_M)
      noPropCells.add(propCellKey(freeAlong[i]!, freeAlong[i + 2]!));
  const seenFloor = samples >= MIN_FIT_SAMPLES ? floorColour(pts, floorY) : undefined;
  const floorSeen = seenFloor ? { floorColour: seenFloor } : {};
  if (!indoor) {
    const walls = samples >= MIN_FIT_SAMPLES ? fitWalls(pts, floorY, [anchor[0], anchor[2]]) : [];
    return { floorY, samples, noPropCells, walls, ...floorSeen };
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
    noPropCells,
    walls: [],
    ...floorSeen,
    ...optional('roomColours', roomColours),
  };
}

/** A remembered point within this of a fitted room face belongs to it (colours). */
const ROOM_FACE_M = 0.3;

/** `{ [key]: value }`, or nothing when value is undefined (optional fields stay absent). */
const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

const propCellKey = (x: number, z: number): string =>
  `${Math.floor(x / PROP_CELL_M)},${Math.floor(z / PROP_CELL_M)}`;

/** Tints a material's colours by up to ±12% (seeded), so each seed dresses its inventions a little differently. */
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
function shadeOf(nx: number, ny: number, nz: number): number {
  const [lx, ly, lz] = INVENTED_LIGHT.direction;
  const l = Math.hypot(lx, ly, lz);
  return INVENTED_LIGHT.ambient + INVENTED_LIGHT.diffuse * Math.max(0, (nx * lx + ny * ly + nz * lz) / l);
}

/** Windows and lamps: the sky's reflection by day, warm light when the style's lights are on. */
const DAY_WINDOW: SceneMaterial = {
  texture: 'solid',
  color: [120, 160, 195],
  color2: [120, 160, 195],
  scale: 1,
};
const LIT_WINDOW: SceneMaterial = {
  texture: 'solid',
  color: [255, 215, 130],
  color2: [255, 215, 130],
  scale: 1,
};
const DAY_LAMP: SceneMaterial = {
  texture: 'solid',
  color: [225, 225, 215],
  color2: [225, 225, 215],
  scale: 1,
};
const LIT_LAMP: SceneMaterial = {
  texture: 'solid',
  color: [255, 235, 170],
  color2: [255, 235, 170],
  scale: 1,
};

/** Thickness of a continued outdoor wall (behind its face). */
const CONTINUED_WALL_THICKNESS_M = 0.3;

const PROP_CELL_M = 3;
const ENTITY_CELL_M = 10;
const INVENT_RADIUS_M = 24;

/**
 * The world the model invents for one clip, as a scene in Spatia's own scene format: the fitted
 * floor (and room), seeded props in 3 m cells around the player, and moving entities anchored to
 * 10 m cells whose motion depends only on the prompt and world time (so they move continuously
 * from clip to clip). Props keep 1 m clear of every target camera.
 */
export function inventWorld(
  style: WorldStyle,
  fit: SceneFit,
  poses: readonly Pose[],
  seed: number,
  promptHash: number,
): Scene {
  const rand = mulberry32(seed);
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
  materials.window = style.lit ? LIT_WINDOW : DAY_WINDOW;
  materials.lampHead = style.lit ? LIT_LAMP : DAY_LAMP;
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
  const clear = (x: number, z: number, r: number): boolean =>
    poses.every((p) => Math.hypot(p.position[0] - x, p.position[2] - z) > r + 1);
  const inside = (x: number, z: number): boolean =>
    !room || (x > room.minX + 0.5 && x < room.maxX - 0.5 && z > room.minZ + 0.5 && z < room.maxZ - 0.5);
  const c0x = Math.floor((anchor[0] - INVENT_RADIUS_M) / PROP_CELL_M);
  const c1x = Math.floor((anchor[0] + INVENT_RADIUS_M) / PROP_CELL_M);
  const c0z = Math.floor((anchor[2] - INVENT_RADIUS_M) / PROP_CELL_M);
  const c1z = Math.floor((anchor[2] + INVENT_RADIUS_M) / PROP_CELL_M);
  for (let gx = c0x; gx <= c1x; gx++) {
    for (let gz = c0z; gz <= c1z; gz++) {
      const h = cellHash(gx, gz, seed);
      if (h / 4294967296 >= style.propDensity || fit.noPropCells.has(`${gx},${gz}`)) continue;
      const r = mulberry32(h);
      const x = (gx + 0.2 + 0.6 * r()) * PROP_CELL_M;
      const z = (gz + 0.2 + 0.6 * r()) * PROP_CELL_M;
      const size = 0.4 + r() * 1.1;
      // Styles with trees make half their props trees; the others are drawn from the style's kinds.
      const kind = style.trees && r() < 0.5 ? 'tree' : style.kinds[Math.floor(r() * style.kinds.length)]!;
      const material = `prop${Math.floor(r() * style.props.length)}`;
      const reach = propReach(kind, size);
      if (!clear(x, z, reach) || !inside(x, z) || !clearOfWalls(x, z, reach)) continue;
      objects.push(...propShapes(kind, x, fit.floorY, z, size, material, r));
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
