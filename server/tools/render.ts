import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SpatiaError } from '../../shared/errors.ts';
import { drive } from '../eval/consistencyEval.ts';
import { encodeRgbPng } from '../io/png.ts';
import { loadTrajectoryFile } from '../io/trajectoryFile.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { loadModel, MODEL_NAMES } from '../models/registry.ts';
import { promptForScene } from '../scene/prompts.ts';
import { sampleTrajectory } from '../world/trajectory.ts';
import { intArg, runTool, sceneArg } from './cli.ts';

const USAGE = `usage: npm run render -- --scene NAME|FILE.json --trajectory FILE.json --out DIR
                       [--model ${MODEL_NAMES.join('|')}] [--prompt TEXT] [--seed N] [--k N]
                       [--no-memory] [--voxel METRES]

Generates a clip sequence along the trajectory, headless, and writes every frame as DIR/NNNNN.png.
The world starts from the scene's ground truth at the first pose (the initial image); the model
invents the rest, conditioned on the spatial memory (unless --no-memory). Formats: docs/formats.md.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      scene: { type: 'string' },
      trajectory: { type: 'string' },
      out: { type: 'string' },
      model: { type: 'string', default: 'procedural' },
      prompt: { type: 'string' },
      seed: { type: 'string', default: '1' },
      k: { type: 'string', default: '7' },
      voxel: { type: 'string', default: String(DEFAULT_VOXEL_SIZE_M) },
      'no-memory': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.scene || !values.trajectory || !values.out)
    throw new SpatiaError('INVALID_ARGUMENT', '--scene, --trajectory and --out are required');
  const scene = sceneArg(values.scene);
  const trajectory = loadTrajectoryFile(resolve(values.trajectory));
  const seed = intArg('seed', values.seed, 0, 0xffffffff);
  const k = intArg('k', values.k, 0, 64);
  const voxelSizeM = Number(values.voxel);
  validateVoxelSize(voxelSizeM);
  const model = await loadModel(values.model, { scene });
  const info = model.describe();
  const poses = sampleTrajectory(trajectory, info.fps);
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  process.stdout.write(
    `rendering ${poses.length - 1} frames of "${scene.name}" with ${info.name} (${info.width}×${info.height}, ${info.device}), memory ${values['no-memory'] ? 'off' : 'on'}\n`,
  );
  const bar = new SingleBar({
    format: 'render [{bar}] {value}/{total} frames | {fps} fps | {voxels} voxels | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(poses.length - 1, 0, { fps: '-', voxels: 0 });
  const t0 = performance.now();
  const memory = SpatialMemory.create(voxelSizeM);
  await drive({
    scene,
    model,
    poses,
    memory,
    seed,
    director: { memory: !values['no-memory'], k, prompt: values.prompt ?? promptForScene(scene) },
    onFrame: (f, i) => {
      writeFileSync(
        join(outDir, `${String(i).padStart(5, '0')}.png`),
        encodeRgbPng(f.rgb, info.width, info.height),
      );
      bar.update(i, {
        fps: (i / ((performance.now() - t0) / 1000)).toFixed(1),
        voxels: memory.voxelCount,
      });
    },
  });
  bar.stop();
  await model.dispose();
  process.stdout.write(
    `wrote ${poses.length - 1} frames to ${outDir} (memory: ${memory.voxelCount} voxels)\n`,
  );
}

runTool(USAGE, main);
