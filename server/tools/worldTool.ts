import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { z } from 'zod';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { modelIntrinsics } from '../models/worldModel.ts';
import { WorldStore } from '../store/worldStore.ts';
import { runTool } from './cli.ts';

const USAGE = `usage: npm run world -- import-ply FILE.ply --world ID [--voxel M] [--prompt TEXT] [--store FILE.sqlite]
       npm run world -- import-rgbd --rgb IMAGE.png --depth DEPTH.png --world ID
                         [--intrinsics K.json] [--depth-scale 1000] [--voxel M] [--prompt TEXT] [--store FILE.sqlite]
       npm run world -- export-ply --world ID --out FILE.ply [--store FILE.sqlite]
       npm run world -- list [--store FILE.sqlite]

Starts a world from a point cloud (PLY: binary or ASCII, float or uchar colours) or from one RGB-D
image (16-bit depth PNG, depth-scale units per metre; intrinsics JSON {fx, fy, cx, cy}, default a
75° camera; the camera stands at the spawn, 1.6 m up, looking along -z), or exports a world's
memory as PLY. Imported worlds are joined like any other: npm start, then ?world=ID.`;

const intrinsicsSchema = z.strictObject({
  fx: z.number().positive(),
  fy: z.number().positive(),
  cx: z.number(),
  cy: z.number(),
});

function readPng(path: string): PNG {
  try {
    return PNG.sync.read(readFileSync(path), { skipRescale: true });
  } catch (e) {
    throw new SpatiaError('INVALID_ARGUMENT', `cannot read PNG ${path}: ${(e as Error).message}`);
  }
}

runTool(USAGE, async () => {
  const { values, positionals } = parseArgs({
    options: {
      world: { type: 'string' },
      out: { type: 'string' },
      rgb: { type: 'string' },
      depth: { type: 'string' },
      intrinsics: { type: 'string' },
      'depth-scale': { type: 'string', default: '1000' },
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
  const store = new WorldStore(resolve(values.store));
  const worldId = values.world;
  const needWorld = (): string => {
    if (!worldId || !/^[A-Za-z0-9_-]{1,64}$/.test(worldId))
      throw new SpatiaError('INVALID_ARGUMENT', '--world ID is required (1-64 letters, digits, - or _)');
    return worldId;
  };
  const voxel = values.voxel === undefined ? undefined : Number(values.voxel);
  if (voxel !== undefined) validateVoxelSize(voxel);
  const create = (id: string, memory: SpatialMemory): void => {
    if (store.getWorld(id))
      throw new SpatiaError('INVALID_ARGUMENT', `world "${id}" already exists in ${values.store}`);
    store.upsertWorld({
      id,
      prompt: values.prompt,
      seed: 1,
      voxelSizeM: memory.voxelSizeM,
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
        const rgbPng = readPng(resolve(values.rgb));
        const depthPng = readPng(resolve(values.depth));
        const { width, height } = rgbPng;
        if (depthPng.width !== width || depthPng.height !== height)
          throw new SpatiaError(
            'BUFFER_SIZE',
            `depth is ${depthPng.width}×${depthPng.height}, the image ${width}×${height}`,
          );
        if ((depthPng as unknown as { depth: number }).depth !== 16)
          throw new SpatiaError(
            'INVALID_ARGUMENT',
            'the depth PNG must be 16-bit (one channel, units per --depth-scale)',
          );
        const scale = Number(values['depth-scale']);
        if (!(scale > 0)) throw new SpatiaError('INVALID_ARGUMENT', '--depth-scale must be > 0');
        let k = modelIntrinsics(width, height);
        if (values.intrinsics) {
          const parsed = intrinsicsSchema.safeParse(
            JSON.parse(readFileSync(resolve(values.intrinsics), 'utf8')),
          );
          if (!parsed.success)
            throw new SpatiaError('INVALID_INTRINSICS', `--intrinsics: ${parsed.error.issues[0]!.message}`);
          k = { ...parsed.data, width, height };
        }
        validateIntrinsics(k);
        const n = width * height;
        const rgb = new Uint8Array(n * 3);
        const depth = new Float32Array(n);
        const channels = rgbPng.data.length / n;
        // pngjs gives 16-bit images (skipRescale) as a Uint16Array of RGBA samples.
        const depthSamples = depthPng.data as unknown as Uint16Array;
        const dch = depthSamples.length / n;
        for (let p = 0; p < n; p++) {
          rgb[p * 3] = rgbPng.data[p * channels]!;
          rgb[p * 3 + 1] = rgbPng.data[p * channels + 1]!;
          rgb[p * 3 + 2] = rgbPng.data[p * channels + 2]!;
          depth[p] = depthSamples[p * dch]! / scale;
        }
        const memory = SpatialMemory.create(voxel ?? DEFAULT_VOXEL_SIZE_M);
        const pose = poseFromYawPitch([0, 1.6, 0], 0, 0);
        memory.fuse({ width, height, rgb, depth }, pose, k);
        memory.addKeyframe({ width, height, rgb, depth }, pose, k);
        create(needWorld(), memory);
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
