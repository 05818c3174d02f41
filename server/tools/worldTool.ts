import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { forwardOf, type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import { type EditOp, type EditRegion, editOpSchema, MAX_EDIT_EXTENT_M } from '../../shared/edit/editOps.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { validate } from '../../shared/protocol/events.ts';
import {
  loadRgbdFrame,
  placeAtSpawn,
  pngSize,
  readIntrinsicsFile,
  readPoseMatrix,
  readSequence,
  SEQUENCE_FORMATS,
  type SequenceFormat,
} from '../io/rgbdSequence.ts';
import { boundsOfPoints, type PointsToInsert } from '../memory/edit.ts';
import { CAPTURE_FUSE } from '../memory/fuse.ts';
import { parsePly } from '../memory/ply.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { modelIntrinsics } from '../models/worldModel.ts';
import { isPostgresUrl } from '../store/postgres/postgresUrl.ts';
import { WorldStore } from '../store/worldStore.ts';
import { type EditEvent, EditLog, storedEdit } from '../world/editLog.ts';
import { spawnIn } from '../world/world.ts';
import { runTool, storeArg } from './cli.ts';

const USAGE = `usage: npm run world -- import-ply FILE.ply --world ID [--voxel M] [--prompt TEXT] [--store FILE.sqlite|postgres://…]
       npm run world -- import-rgbd --rgb IMAGE.png|jpg --depth DEPTH.png --world ID [--pose POSE.txt]
                         [--intrinsics K.json] [--depth-scale 1000] [--voxel M] [--prompt TEXT] [--store FILE.sqlite|postgres://…]
       npm run world -- import-sequence DIR --format tum|7scenes|generic --world ID [--every N] [--max-frames N]
                         [--intrinsics K.json] [--voxel M] [--prompt TEXT] [--store FILE.sqlite|postgres://…]
       npm run world -- export-ply --world ID --out FILE.ply [--store FILE.sqlite|postgres://…]
       npm run world -- edit --world ID (--erase-box X0 Y0 Z0 X1 Y1 Z1 | --erase-sphere X Y Z R
                         | --recolor-box X0 Y0 Z0 X1 Y1 Z1 --color R G B | --insert-ply FILE.ply --at X Y Z [--scale S] [--on-surface])
                         [--store FILE.sqlite|postgres://…]
       npm run world -- edits --world ID [--store FILE.sqlite|postgres://…]
       npm run world -- list [--store FILE.sqlite|postgres://…]

Starts a world from a point cloud (PLY: binary or ASCII, float or uchar colours), from one RGB-D
image (colour PNG or JPEG; 16-bit depth PNG, depth-scale units per metre; intrinsics JSON {fx, fy,
cx, cy[, width, height]}, default a 75° camera; --pose: a 4×4 camera-to-world matrix in Spatia's
conventions, default level at 1.6 m), or from a captured RGB-D sequence (layouts: docs/formats.md),
or exports a world's memory as PLY. \`edit\` changes a stored world's memory as a player's edit
does (metres, the world's axes: y up): an erased region stays empty memory, recoloured and placed
voxels stay as written; --insert-ply places a point cloud scaled by S with the middle of its
bottom at X Y Z (--on-surface: lowered or raised onto the highest surface of the memory under its
footprint, up to 1 m above Y). The edit is logged (author "world-tool"); \`edits\` prints a world's log. Edit a
world while no server has it loaded. Captured poses are re-orthonormalised when within 1e-2 of a
rotation and refused beyond; the capture is moved so its first camera stands at the spawn, heading
along -z. Imported worlds are joined like any other: npm start, then ?world=ID.`;

/** The edit the command line asks for: an operation, or a PLY to place (checked before any file is read). */
type EditFromFlags =
  | { kind: 'op'; op: EditOp }
  | { kind: 'ply'; file: string; at: [number, number, number]; scale: number };

function editFromFlags(
  lists: Partial<Record<NumberListFlag, number[]>>,
  ply: string | undefined,
  scale: number,
): EditFromFlags {
  const given = [lists['erase-box'], lists['erase-sphere'], lists['recolor-box'], ply].filter(
    (v) => v !== undefined,
  );
  if (given.length !== 1)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      'edit needs exactly one of --erase-box, --erase-sphere, --recolor-box, --insert-ply',
    );
  if (ply !== undefined) {
    const at = lists.at;
    if (!at) throw new SpatiaError('INVALID_ARGUMENT', '--insert-ply needs --at X Y Z');
    if (!(scale > 0 && Number.isFinite(scale)))
      throw new SpatiaError('INVALID_ARGUMENT', '--scale must be > 0');
    return { kind: 'ply', file: ply, at: at as [number, number, number], scale };
  }
  const box = (v: number[]): EditRegion => ({
    shape: 'box',
    min: [v[0]!, v[1]!, v[2]!],
    max: [v[3]!, v[4]!, v[5]!],
  });
  let op: unknown;
  if (lists['erase-box']) op = { op: 'erase', region: box(lists['erase-box']) };
  else if (lists['erase-sphere']) {
    const [x, y, z, r] = lists['erase-sphere'];
    op = { op: 'erase', region: { shape: 'sphere', center: [x, y, z], radius: r } };
  } else {
    if (!lists.color) throw new SpatiaError('INVALID_ARGUMENT', '--recolor-box needs --color R G B');
    op = { op: 'recolor', region: box(lists['recolor-box']!), color: lists.color };
  }
  // The same checks as a player's edit (extent, order of corners, colour range).
  const v = validate(editOpSchema, op);
  if (!v.ok) throw new SpatiaError('INVALID_ARGUMENT', `edit: ${v.reason}`);
  return { kind: 'op', op: v.value };
}

/** A PLY's points scaled by `scale`, moved so the middle of their bottom is at `at`. */
function readPlyToPlace(file: string, at: readonly number[], scale: number): PointsToInsert {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(resolve(file));
  } catch (e) {
    throw new SpatiaError('INVALID_ARGUMENT', `cannot read ${file}: ${(e as Error).message}`);
  }
  const ply = parsePly(bytes);
  const n = ply.count;
  if (n === 0) throw new SpatiaError('INVALID_ARGUMENT', `${file} has no points`);
  const { min, max } = boundsOfPoints(ply);
  const extent = Math.max(max[0]! - min[0]!, max[1]! - min[1]!, max[2]! - min[2]!) * scale;
  if (!(extent <= MAX_EDIT_EXTENT_M))
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `${file} scaled by ${scale} spans ${extent.toFixed(2)} m: at most ${MAX_EDIT_EXTENT_M} m`,
    );
  const origin = [(min[0]! + max[0]!) / 2, min[1]!, (min[2]! + max[2]!) / 2];
  const positions = new Float32Array(n * 3);
  const colors = new Uint8Array(n * 3);
  for (let i = 0; i < n * 3; i++) {
    positions[i] = at[i % 3]! + (ply.positions[i]! - origin[i % 3]!) * scale;
    colors[i] = Math.max(0, Math.min(255, Math.round(ply.colors[i]!)));
  }
  return { count: n, positions, colors };
}

/** The highest voxel top of the memory under the points' horizontal footprint, no higher than `belowY`. */
function surfaceUnder(memory: SpatialMemory, points: PointsToInsert, belowY: number): number | undefined {
  const { min, max } = boundsOfPoints(points);
  const [x0, , z0] = min;
  const [x1, , z1] = max;
  let top: number | undefined;
  memory.forEachVoxel((v) => {
    if (v.x < x0 || v.x > x1 || v.z < z0 || v.z > z1 || v.y > belowY) return;
    if (top === undefined || v.y > top) top = v.y;
  });
  return top;
}

/** A keyframe is kept when no kept one overlaps its view this much (as the director keeps them). */
const KEYFRAME_MAX_IOU = 0.5;

/** Flags followed by several numbers (negative ones too, which parseArgs would read as options). */
const NUMBER_LISTS = { 'erase-box': 6, 'erase-sphere': 4, 'recolor-box': 6, color: 3, at: 3 } as const;
type NumberListFlag = keyof typeof NUMBER_LISTS;

/** Takes `--flag n1 … nk` out of argv for every flag in NUMBER_LISTS; checks each is a finite number. */
function takeNumberLists(argv: string[]): {
  rest: string[];
  lists: Partial<Record<NumberListFlag, number[]>>;
} {
  const rest: string[] = [];
  const lists: Partial<Record<NumberListFlag, number[]>> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.startsWith('--') ? (argv[i]!.slice(2) as NumberListFlag) : undefined;
    const n = flag !== undefined ? NUMBER_LISTS[flag] : undefined;
    if (flag === undefined || n === undefined) {
      rest.push(argv[i]!);
      continue;
    }
    const values = argv.slice(i + 1, i + 1 + n).map(Number);
    if (values.length !== n || !values.every(Number.isFinite))
      throw new SpatiaError('INVALID_ARGUMENT', `--${flag} needs ${n} numbers`);
    lists[flag] = values;
    i += n;
  }
  return { rest, lists };
}

runTool(USAGE, async () => {
  const { rest, lists } = takeNumberLists(process.argv.slice(2));
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      world: { type: 'string' },
      out: { type: 'string' },
      rgb: { type: 'string' },
      depth: { type: 'string' },
      intrinsics: { type: 'string' },
      'depth-scale': { type: 'string', default: '1000' },
      pose: { type: 'string' },
      format: { type: 'string' },
      every: { type: 'string', default: '1' },
      'max-frames': { type: 'string' },
      'insert-ply': { type: 'string' },
      scale: { type: 'string', default: '1' },
      'on-surface': { type: 'boolean', default: false },
      voxel: { type: 'string' },
      prompt: { type: 'string', default: 'an imported world' },
      store: { type: 'string', default: 'data/spatia.sqlite' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const worldId = values.world;
  const needWorld = (): string => {
    if (!worldId || !/^[A-Za-z0-9_-]{1,64}$/.test(worldId))
      throw new SpatiaError('INVALID_ARGUMENT', '--world ID is required (1-64 letters, digits, - or _)');
    return worldId;
  };
  const voxel = values.voxel === undefined ? undefined : Number(values.voxel);
  if (voxel !== undefined) validateVoxelSize(voxel);
  const importing = command.startsWith('import-');
  // Everything the command line says is checked before any file is read or any frame fused.
  if (importing || command === 'export-ply' || command === 'edit' || command === 'edits') needWorld();
  const editOp =
    command === 'edit' ? editFromFlags(lists, values['insert-ply'], Number(values.scale)) : undefined;
  // A fresh checkout has no data/ folder yet.
  if (importing && !isPostgresUrl(values.store))
    mkdirSync(dirname(resolve(values.store)), { recursive: true });
  const store = new WorldStore(storeArg(values.store));
  if (importing && store.getWorld(worldId!)) {
    store.close();
    throw new SpatiaError('INVALID_ARGUMENT', `world "${worldId}" already exists in ${store.path}`);
  }
  /** `camera`: where the capture's first camera stands (placed at the spawn): players appear there, looking as it looked. */
  const create = (id: string, memory: SpatialMemory, camera?: Pose): void => {
    const spawn = spawnIn(undefined);
    store.upsertWorld({
      id,
      prompt: values.prompt,
      seed: 1,
      voxelSizeM: memory.voxelSizeM,
      spawn: camera
        ? { ...spawn, pitch: Math.asin(Math.max(-1, Math.min(1, forwardOf(camera)[1]))) }
        : undefined,
      createdAt: new Date().toISOString(),
    });
    const c = store.commit(id, memory);
    process.stdout.write(
      `world "${id}": ${memory.voxelCount} voxels in ${c.chunks} chunks (${(c.bytes / 1048576).toFixed(1)} MiB)\n`,
    );
  };
  try {
    switch (command) {
      case 'list':
        for (const id of store.listWorlds()) process.stdout.write(`${id}\n`);
        break;
      case 'import-ply': {
        const file = positionals[1];
        if (!file) throw new SpatiaError('INVALID_ARGUMENT', 'import-ply needs a FILE.ply');
        let bytes: Uint8Array;
        try {
          bytes = readFileSync(resolve(file));
        } catch (e) {
          throw new SpatiaError('INVALID_ARGUMENT', `cannot read ${file}: ${(e as Error).message}`);
        }
        create(needWorld(), SpatialMemory.fromPly(bytes, voxel));
        break;
      }
      case 'import-rgbd': {
        if (!values.rgb || !values.depth)
          throw new SpatiaError('INVALID_ARGUMENT', 'import-rgbd needs --rgb and --depth');
        const scale = Number(values['depth-scale']);
        if (!(scale > 0)) throw new SpatiaError('INVALID_ARGUMENT', '--depth-scale must be > 0');
        const file = values.intrinsics ? readIntrinsicsFile(resolve(values.intrinsics)) : undefined;
        const size = pngSize(resolve(values.depth));
        if (
          (file?.width !== undefined && file.width !== size.width) ||
          (file?.height !== undefined && file.height !== size.height)
        )
          throw new SpatiaError(
            'INVALID_INTRINSICS',
            `--intrinsics is for ${file.width}×${file.height}, the depth image is ${size.width}×${size.height}`,
          );
        const k = file
          ? { fx: file.fx, fy: file.fy, cx: file.cx, cy: file.cy, ...size }
          : modelIntrinsics(size.width, size.height);
        validateIntrinsics(k);
        const spawn = spawnIn(undefined);
        const pose = values.pose
          ? placeAtSpawn([readPoseMatrix(resolve(values.pose))], spawn.position)[0]!
          : poseFromYawPitch(spawn.position, spawn.yaw, spawn.pitch);
        const frame = await loadRgbdFrame(resolve(values.rgb), resolve(values.depth), k, scale);
        const memory = SpatialMemory.create(voxel ?? DEFAULT_VOXEL_SIZE_M);
        memory.fuse(frame, pose, k);
        memory.addKeyframe(frame, pose, k);
        create(needWorld(), memory, values.pose ? pose : undefined);
        break;
      }
      case 'import-sequence': {
        const dir = positionals[1];
        if (!dir) throw new SpatiaError('INVALID_ARGUMENT', 'import-sequence needs a DIR');
        const format = values.format as SequenceFormat;
        if (!SEQUENCE_FORMATS.includes(format))
          throw new SpatiaError('INVALID_ARGUMENT', `--format must be one of ${SEQUENCE_FORMATS.join(', ')}`);
        const every = Number(values.every);
        const maxFrames =
          values['max-frames'] === undefined ? Number.POSITIVE_INFINITY : Number(values['max-frames']);
        if (!(Number.isInteger(every) && every >= 1))
          throw new SpatiaError('INVALID_ARGUMENT', '--every must be an integer ≥ 1');
        if (!(maxFrames >= 1)) throw new SpatiaError('INVALID_ARGUMENT', '--max-frames must be ≥ 1');
        const seq = readSequence(
          resolve(dir),
          format,
          values.intrinsics ? readIntrinsicsFile(resolve(values.intrinsics)) : undefined,
        );
        const frames = seq.frames.filter((_f, i) => i % every === 0).slice(0, maxFrames);
        const poses = placeAtSpawn(
          frames.map((f) => f.pose),
          spawnIn(undefined).position,
        );
        const k = seq.intrinsics;
        process.stdout.write(
          `importing ${frames.length} of ${seq.frames.length} frames (${format}, ${k.width}×${k.height}, fx ${k.fx})` +
            `${seq.unmatched > 0 ? `; ${seq.unmatched} colour frames had no depth or pose within 20 ms` : ''}\n`,
        );
        const memory = SpatialMemory.create(voxel ?? DEFAULT_VOXEL_SIZE_M);
        const bar = new SingleBar({
          format:
            'import [{bar}] {value}/{total} frames | {voxels} voxels | {keyframes} keyframes | ETA {eta_formatted}',
          hideCursor: true,
        });
        bar.start(frames.length, 0, { voxels: 0, keyframes: 0 });
        try {
          for (let i = 0; i < frames.length; i++) {
            const f = frames[i]!;
            const image = await loadRgbdFrame(f.colorPath, f.depthPath, k, seq.depthScale, seq.invalidDepth);
            const pose = poses[i]!;
            memory.fuse(image, pose, k, CAPTURE_FUSE);
            const best = memory.retrieve(pose, k, { k: 1, minIoU: 0 })[0];
            if (!best || best.iou < KEYFRAME_MAX_IOU) memory.addKeyframe(image, pose, k);
            bar.update(i + 1, { voxels: memory.voxelCount, keyframes: memory.keyframes.size });
          }
        } finally {
          bar.stop();
        }
        create(needWorld(), memory, poses[0]);
        break;
      }
      case 'export-ply': {
        const id = needWorld();
        const meta = store.getWorld(id);
        if (!meta) throw new SpatiaError('INVALID_ARGUMENT', `no world "${id}" in ${store.path}`);
        if (!values.out) throw new SpatiaError('INVALID_ARGUMENT', '--out FILE.ply is required');
        const memory = store.loadMemory(id, meta.voxelSizeM);
        writeFileSync(resolve(values.out), memory.toPly());
        process.stdout.write(`wrote ${values.out}: ${memory.voxelCount} points\n`);
        break;
      }
      case 'edit': {
        const id = needWorld();
        const meta = store.getWorld(id);
        if (!meta) throw new SpatiaError('INVALID_ARGUMENT', `no world "${id}" in ${store.path}`);
        const memory = store.loadMemory(id, meta.voxelSizeM);
        const log = new EditLog(memory.grid, store.listEdits(id));
        const author = { id: 'world-tool', name: 'world-tool' };
        let event: EditEvent;
        if (editOp!.kind === 'op') event = log.apply(editOp!.op, author, new Date());
        else {
          const { file, scale } = editOp!;
          let at = editOp!.at;
          let points = readPlyToPlace(file, at, scale);
          if (values['on-surface']) {
            const ground = surfaceUnder(memory, points, at[1] + 1);
            if (ground === undefined)
              throw new SpatiaError(
                'INVALID_ARGUMENT',
                `--on-surface: the memory has no surface under ${at.join(' ')}`,
              );
            at = [at[0], ground, at[2]];
            points = readPlyToPlace(file, at, scale);
          }
          event = log.insertPoints(
            points,
            { op: 'insertPly', source: basename(file), points: points.count, at, scale },
            author,
            new Date(),
          );
        }
        store.commit(id, memory, [storedEdit(event.entry)]);
        const b = event.entry.bounds;
        const fmt = (v: readonly number[]): string => v.map((x) => x.toFixed(2)).join(', ');
        process.stdout.write(
          `world "${id}": edit ${event.entry.seq} (${event.entry.op.op}) changed ${event.voxels} voxels ` +
            `in (${fmt(b.min)}) – (${fmt(b.max)})\n`,
        );
        break;
      }
      case 'edits': {
        const id = needWorld();
        if (!store.getWorld(id))
          throw new SpatiaError('INVALID_ARGUMENT', `no world "${id}" in ${store.path}`);
        for (const e of store.listEdits(id))
          process.stdout.write(
            `${e.seq}\t${e.at}\t${e.author}\t${e.op.op}${e.undone ? ' (undone)' : ''}\t${JSON.stringify(e.op)}\n`,
          );
        break;
      }
      default:
        throw new SpatiaError('INVALID_ARGUMENT', `unknown command "${command}"`);
    }
  } finally {
    store.close();
  }
});
