import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { forwardOf, type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
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
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { modelIntrinsics } from '../models/worldModel.ts';
import { WorldStore } from '../store/worldStore.ts';
import { spawnIn } from '../world/world.ts';
import { runTool } from './cli.ts';

const USAGE = `usage: npm run world -- import-ply FILE.ply --world ID [--voxel M] [--prompt TEXT] [--store FILE.sqlite]
       npm run world -- import-rgbd --rgb IMAGE.png|jpg --depth DEPTH.png --world ID [--pose POSE.txt]
                         [--intrinsics K.json] [--depth-scale 1000] [--voxel M] [--prompt TEXT] [--store FILE.sqlite]
       npm run world -- import-sequence DIR --format tum|7scenes|generic --world ID [--every N] [--max-frames N]
                         [--intrinsics K.json] [--voxel M] [--prompt TEXT] [--store FILE.sqlite]
       npm run world -- export-ply --world ID --out FILE.ply [--store FILE.sqlite]
       npm run world -- list [--store FILE.sqlite]

Starts a world from a point cloud (PLY: binary or ASCII, float or uchar colours), from one RGB-D
image (colour PNG or JPEG; 16-bit depth PNG, depth-scale units per metre; intrinsics JSON {fx, fy,
cx, cy[, width, height]}, default a 75° camera; --pose: a 4×4 camera-to-world matrix in Spatia's
conventions, default level at 1.6 m), or from a captured RGB-D sequence (layouts: docs/formats.md),
or exports a world's memory as PLY. Captured poses are re-orthonormalised when within 1e-2 of a
rotation and refused beyond; the capture is moved so its first camera stands at the spawn, heading
along -z. Imported worlds are joined like any other: npm start, then ?world=ID.`;

/** A keyframe is kept when no kept one overlaps its view this much (as the director keeps them). */
const KEYFRAME_MAX_IOU = 0.5;

runTool(USAGE, async () => {
  const { values, positionals } = parseArgs({
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
  if (importing || command === 'export-ply') needWorld();
  // A fresh checkout has no data/ folder yet.
  if (importing) mkdirSync(dirname(resolve(values.store)), { recursive: true });
  const store = new WorldStore(resolve(values.store));
  if (importing && store.getWorld(worldId!)) {
    store.close();
    throw new SpatiaError('INVALID_ARGUMENT', `world "${worldId}" already exists in ${values.store}`);
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
            memory.fuse(image, pose, k);
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
        if (!meta) throw new SpatiaError('INVALID_ARGUMENT', `no world "${id}" in ${values.store}`);
        if (!values.out) throw new SpatiaError('INVALID_ARGUMENT', '--out FILE.ply is required');
        const memory = store.loadMemory(id, meta.voxelSizeM);
        writeFileSync(resolve(values.out), memory.toPly());
        process.stdout.write(`wrote ${values.out}: ${memory.voxelCount} points\n`);
        break;
      }
      default:
        throw new SpatiaError('INVALID_ARGUMENT', `unknown command "${command}"`);
    }
  } finally {
    store.close();
  }
});
