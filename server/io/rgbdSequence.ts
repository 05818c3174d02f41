import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import sharp, { type OutputInfo } from 'sharp';
import { z } from 'zod';
import { type Intrinsics, validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import {
  type Mat3,
  multiplyMat3,
  orthonormalized,
  type Pose,
  rotationFromQuaternion,
} from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { RgbdImage } from '../../shared/image.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';

/**
 * Captured RGB-D sequences on disk (docs/formats.md "RGB-D sequences"): the frames' files and
 * camera poses in Spatia's conventions, and decoding one frame. Formats:
 * - `tum`: TUM RGB-D. Either the benchmark's own layout (`rgb.txt`, `depth.txt`, `groundtruth.txt`,
 *   associated by nearest timestamp within 20 ms) or a keyframe list (`rgb/`, `depth/` and
 *   `truth_cam_poses.txt`, row N ↔ the N-th file of each folder). Poses are `t q` camera-to-world
 *   in a +z-up world; depth is 1/5000 m; intrinsics from `TUM3.yaml` (or `--intrinsics`).
 * - `7scenes`: Microsoft 7-Scenes: `frame-NNNNNN.color.png`, `.depth.png` (millimetres, 65535
 *   invalid), `.pose.txt` (4×4 camera-to-world, a y-down world); 585 px focal length, 640×480.
 * - `generic`: `intrinsics.json` ({fx, fy, cx, cy, width, height, depthScale}), and per frame
 *   `NAME.color.png|jpg`, `NAME.depth.png` (16-bit), `NAME.pose.txt` (4×4 camera-to-world in
 *   Spatia's conventions), frames in name order.
 */
export const SEQUENCE_FORMATS = ['tum', '7scenes', 'generic'] as const;
export type SequenceFormat = (typeof SEQUENCE_FORMATS)[number];

interface SequenceFrame {
  /** A name for messages: the colour file. */
  readonly name: string;
  readonly colorPath: string;
  readonly depthPath: string;
  /** Camera-to-world in Spatia's conventions (OpenCV camera, +y up world). */
  readonly pose: Pose;
}

export interface RgbdSequence {
  readonly format: SequenceFormat;
  readonly intrinsics: Intrinsics;
  /** Depth PNG units per metre. */
  readonly depthScale: number;
  /** A depth value that means "no measurement" besides 0 (7-Scenes: 65535). */
  readonly invalidDepth?: number;
  readonly frames: readonly SequenceFrame[];
  /** Colour frames without a depth frame or pose near them in time (TUM's own layout). */
  readonly unmatched: number;
}

/** World changes into Spatia's +y-up world (row-major, det +1). */
const Z_UP_TO_Y_UP: Mat3 = [1, 0, 0, 0, 0, 1, 0, -1, 0];
const Y_DOWN_TO_Y_UP: Mat3 = [1, 0, 0, 0, -1, 0, 0, 0, -1];
const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
/** TUM's timestamps of one frame's colour, depth and pose agree within this, seconds. */
const TUM_MAX_DT_S = 0.02;

const fail = (message: string): never => {
  throw new SpatiaError('INVALID_ARGUMENT', message);
};

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    return fail(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Non-comment lines split on whitespace, with their 1-based line numbers. */
function rows(path: string): { line: number; cells: string[] }[] {
  return readText(path)
    .split('\n')
    .map((text, i) => ({ line: i + 1, cells: text.trim().split(/\s+/) }))
    .filter((r) => r.cells[0] !== '' && !r.cells[0]!.startsWith('#'));
}

function numbers(cells: readonly string[], count: number, where: string): number[] {
  const xs = cells.map(Number);
  if (xs.length !== count || !xs.every(Number.isFinite)) fail(`${where}: expected ${count} numbers`);
  return xs;
}

/** A camera-to-world pose in a dataset's world, turned into Spatia's world by `world`. */
function converted(
  rotation: readonly number[],
  position: readonly number[],
  world: Mat3,
  what: string,
): Pose {
  const r = orthonormalized(rotation, `${what} rotation`);
  const [x, y, z] = position as [number, number, number];
  return {
    rotation: multiplyMat3(world, r),
    position: [
      world[0] * x + world[1] * y + world[2] * z,
      world[3] * x + world[4] * y + world[5] * z,
      world[6] * x + world[7] * y + world[8] * z,
    ],
  };
}

/**
 * A 4×4 row-major camera-to-world matrix from a text file (16 numbers, last row 0 0 0 1), its world
 * turned into Spatia's by `world` (default: it is Spatia's).
 */
export function readPoseMatrix(path: string, world: Mat3 = IDENTITY): Pose {
  const xs = numbers(readText(path).trim().split(/\s+/), 16, path);
  const last = xs.slice(12);
  if (Math.abs(last[0]!) + Math.abs(last[1]!) + Math.abs(last[2]!) + Math.abs(last[3]! - 1) > 1e-6)
    fail(`${path}: the last row of a pose matrix must be 0 0 0 1`);
  return converted(
    [xs[0]!, xs[1]!, xs[2]!, xs[4]!, xs[5]!, xs[6]!, xs[8]!, xs[9]!, xs[10]!],
    [xs[3]!, xs[7]!, xs[11]!],
    world,
    path,
  );
}

const intrinsicsFileSchema = z.strictObject({
  fx: z.number().positive(),
  fy: z.number().positive(),
  cx: z.number(),
  cy: z.number(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  depthScale: z.number().positive().optional(),
});

/** An intrinsics JSON file: {fx, fy, cx, cy} and optionally width, height and depthScale. */
export function readIntrinsicsFile(path: string): z.infer<typeof intrinsicsFileSchema> {
  let json: unknown;
  try {
    json = JSON.parse(readText(path));
  } catch (e) {
    if (e instanceof SpatiaError) throw e;
    fail(`${path} is not JSON: ${(e as Error).message}`);
  }
  const r = intrinsicsFileSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new SpatiaError('INVALID_INTRINSICS', `${path}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    return fail(`cannot read folder ${dir}: ${(e as Error).message}`);
  }
}

/** Intrinsics from a TUM3.yaml-style file (Camera.fx …) when present. */
function tumYamlIntrinsics(dir: string): { fx: number; fy: number; cx: number; cy: number } | undefined {
  const path = join(dir, 'TUM3.yaml');
  if (!existsSync(path)) return undefined;
  const text = readText(path);
  const get = (key: string): number => {
    const m = new RegExp(`^Camera\\.${key}:\\s*([-0-9.eE+]+)`, 'm').exec(text);
    return m ? Number(m[1]) : fail(`${path}: no Camera.${key}`);
  };
  return { fx: get('fx'), fy: get('fy'), cx: get('cx'), cy: get('cy') };
}

/** TUM's documented default camera (ROS), used when nothing else names the intrinsics. */
const TUM_DEFAULT = { fx: 525, fy: 525, cx: 319.5, cy: 239.5 };

function readTum(dir: string): { frames: SequenceFrame[]; unmatched: number } {
  if (existsSync(join(dir, 'rgb.txt'))) {
    const list = (name: string): { t: number; cells: string[]; line: number }[] =>
      rows(join(dir, name)).map((r) => ({ t: Number(r.cells[0]), cells: r.cells, line: r.line }));
    const colour = list('rgb.txt');
    const depth = list('depth.txt');
    const poses = list('groundtruth.txt');
    const nearest = <T extends { t: number }>(xs: T[], t: number): T | undefined => {
      let best: T | undefined;
      for (const x of xs) if (!best || Math.abs(x.t - t) < Math.abs(best.t - t)) best = x;
      return best && Math.abs(best.t - t) <= TUM_MAX_DT_S ? best : undefined;
    };
    const frames: SequenceFrame[] = [];
    let unmatched = 0;
    for (const c of colour) {
      const d = nearest(depth, c.t);
      const p = nearest(poses, c.t);
      if (!d || !p) {
        unmatched++;
        continue;
      }
      const where = `groundtruth.txt line ${p.line}`;
      const [tx, ty, tz, qx, qy, qz, qw] = numbers(p.cells.slice(1), 7, where);
      frames.push({
        name: c.cells[1] ?? '?',
        colorPath: join(dir, c.cells[1] ?? fail(`rgb.txt line ${c.line}: no file`)),
        depthPath: join(dir, d.cells[1] ?? fail(`depth.txt line ${d.line}: no file`)),
        pose: converted(
          rotationFromQuaternion(qx!, qy!, qz!, qw!, where),
          [tx!, ty!, tz!],
          Z_UP_TO_Y_UP,
          where,
        ),
      });
    }
    return { frames, unmatched };
  }
  const posesPath = join(dir, 'truth_cam_poses.txt');
  if (!existsSync(posesPath))
    fail(`${dir} is not a TUM sequence: it has neither rgb.txt nor truth_cam_poses.txt`);
  const colour = listDir(join(dir, 'rgb')).filter((f) => /\.(png|jpe?g)$/i.test(f));
  const depth = listDir(join(dir, 'depth')).filter((f) => /\.png$/i.test(f));
  const poses = rows(posesPath);
  if (colour.length !== depth.length || colour.length !== poses.length)
    fail(
      `${dir}: ${colour.length} colour frames, ${depth.length} depth frames, ${poses.length} poses: they must match`,
    );
  return {
    frames: poses.map((p, i) => {
      const where = `truth_cam_poses.txt line ${p.line}`;
      const [tx, ty, tz, qx, qy, qz, qw] = numbers(p.cells.slice(1), 7, where);
      return {
        name: colour[i]!,
        colorPath: join(dir, 'rgb', colour[i]!),
        depthPath: join(dir, 'depth', depth[i]!),
        pose: converted(
          rotationFromQuaternion(qx!, qy!, qz!, qw!, where),
          [tx!, ty!, tz!],
          Z_UP_TO_Y_UP,
          where,
        ),
      };
    }),
    unmatched: 0,
  };
}

/** Frames named `PREFIX.color.EXT`, `PREFIX.depth.png`, `PREFIX.pose.txt` in name order. */
function readTriples(dir: string, world: Mat3): SequenceFrame[] {
  const files = listDir(dir);
  const colour = files.filter((f) => /\.color\.(png|jpe?g)$/i.test(f));
  if (colour.length === 0) fail(`${dir} has no NAME.color.png or NAME.color.jpg frames`);
  return colour.map((c) => {
    const prefix = c.replace(/\.color\.[^.]+$/i, '');
    const depthPath = join(dir, `${prefix}.depth.png`);
    const posePath = join(dir, `${prefix}.pose.txt`);
    if (!existsSync(depthPath)) fail(`${c} has no ${prefix}.depth.png`);
    if (!existsSync(posePath)) fail(`${c} has no ${prefix}.pose.txt`);
    return { name: c, colorPath: join(dir, c), depthPath, pose: readPoseMatrix(posePath, world) };
  });
}

/**
 * Reads a sequence's frames and poses (not its images). `intrinsics` overrides the format's
 * (required size: the images'). Throws INVALID_ARGUMENT, INVALID_POSE or INVALID_INTRINSICS naming
 * the file and line.
 */
export function readSequence(
  dir: string,
  format: SequenceFormat,
  intrinsics?: { fx: number; fy: number; cx: number; cy: number; width?: number; height?: number },
): RgbdSequence {
  if (!existsSync(dir)) fail(`no folder ${dir}`);
  let k: { fx: number; fy: number; cx: number; cy: number; width?: number; height?: number };
  let depthScale: number;
  let invalidDepth: number | undefined;
  let frames: SequenceFrame[];
  let unmatched = 0;
  if (format === 'tum') {
    ({ frames, unmatched } = readTum(dir));
    k = intrinsics ?? tumYamlIntrinsics(dir) ?? TUM_DEFAULT;
    depthScale = 5000;
  } else if (format === '7scenes') {
    frames = readTriples(dir, Y_DOWN_TO_Y_UP);
    k = intrinsics ?? { fx: 585, fy: 585, cx: 320, cy: 240, width: 640, height: 480 };
    depthScale = 1000;
    invalidDepth = 65535;
  } else {
    const file = readIntrinsicsFile(join(dir, 'intrinsics.json'));
    frames = readTriples(dir, IDENTITY);
    k = intrinsics ?? file;
    depthScale = file.depthScale ?? 1000;
  }
  if (frames.length === 0) fail(`${dir}: no frames`);
  const size = pngSize(frames[0]!.depthPath);
  if (
    (k.width !== undefined && k.width !== size.width) ||
    (k.height !== undefined && k.height !== size.height)
  )
    throw new SpatiaError(
      'INVALID_INTRINSICS',
      `the intrinsics are for ${k.width}×${k.height}, the frames are ${size.width}×${size.height}`,
    );
  const full: Intrinsics = { fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy, width: size.width, height: size.height };
  validateIntrinsics(full);
  return { format, intrinsics: full, depthScale, invalidDepth, frames, unmatched };
}

/** PNG files start with this signature and then the IHDR chunk (width, height: u32 big-endian at 16, 20). */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height of a PNG, read from its header (the image is decoded once, when it is fused). */
export function pngSize(path: string): { width: number; height: number } {
  const head = Buffer.alloc(24);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    readSync(fd, head, 0, 24, 0);
  } catch (e) {
    return fail(`cannot read ${path}: ${(e as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (!head.subarray(0, 8).equals(PNG_SIGNATURE) || head.toString('latin1', 12, 16) !== 'IHDR')
    fail(`${path} is not a PNG`);
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

function readPng(path: string): PNG {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    return fail(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return PNG.sync.read(bytes, { skipRescale: true });
  } catch (e) {
    return fail(`${path} is not a PNG: ${(e as Error).message}`);
  }
}

/**
 * One RGB-D frame: colour of any format sharp reads (PNG, JPEG, …), depth from a 16-bit PNG in
 * `depthScale` units per metre (0 and `invalidDepth`: no measurement). Sizes must agree with
 * `k`.
 */
export async function loadRgbdFrame(
  colorPath: string,
  depthPath: string,
  k: Intrinsics,
  depthScale: number,
  invalidDepth?: number,
): Promise<RgbdImage> {
  const { width, height } = k;
  let colour: { data: Buffer; info: OutputInfo };
  try {
    colour = await sharp(colorPath)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    return fail(`cannot read the colour image ${colorPath}: ${(e as Error).message}`);
  }
  if (colour.info.width !== width || colour.info.height !== height || colour.info.channels !== 3)
    fail(`${colorPath} is ${colour.info.width}×${colour.info.height}, the camera ${width}×${height}`);
  const png = readPng(depthPath);
  if (png.width !== width || png.height !== height)
    throw new SpatiaError(
      'BUFFER_SIZE',
      `${depthPath} is ${png.width}×${png.height}, the colour ${width}×${height}`,
    );
  if ((png as unknown as { depth: number }).depth !== 16)
    fail(`${depthPath} must be a 16-bit PNG (depth in units of 1/${depthScale} m)`);
  const n = width * height;
  // pngjs gives 16-bit images (skipRescale) as RGBA-or-grey samples in a Uint16Array.
  const samples = png.data as unknown as Uint16Array;
  const stride = samples.length / n;
  const depth = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    const v = samples[p * stride]!;
    depth[p] = v === invalidDepth ? 0 : v / depthScale;
  }
  return { width, height, rgb: new Uint8Array(colour.data.buffer, colour.data.byteOffset, n * 3), depth };
}

/**
 * Moves a sequence rigidly (a turn about +y and a translation) so its first camera stands at
 * `spawn`, heading along −z like a player who spawns there; the rest follows. Its pitch and roll
 * stay as captured, so the floor stays level.
 */
export function placeAtSpawn(poses: readonly Pose[], spawn: Vec3): Pose[] {
  const first = poses[0];
  if (!first) return [];
  const f = first.rotation;
  // The first camera's heading (its forward axis on the ground plane; its up axis if it looks straight down).
  let hx = f[2];
  let hz = f[8];
  if (Math.hypot(hx, hz) < 1e-6) {
    hx = -f[1];
    hz = -f[7];
  }
  const yaw = Math.atan2(hx, -hz);
  const c = Math.cos(yaw);
  const s = Math.sin(yaw);
  const turn: Mat3 = [c, 0, s, 0, 1, 0, -s, 0, c];
  const p0 = first.position;
  return poses.map((p) => {
    const d = [p.position[0] - p0[0], p.position[1] - p0[1], p.position[2] - p0[2]] as const;
    return {
      rotation: multiplyMat3(turn, p.rotation),
      position: [c * d[0] + s * d[2] + spawn[0], d[1] + spawn[1], -s * d[0] + c * d[2] + spawn[2]],
    };
  });
}
