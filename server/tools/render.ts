import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SpatiaError } from '../../shared/errors.ts';
import { drive } from '../eval/consistencyEval.ts';
import { contactSheet, encodeRgbPng } from '../io/png.ts';
import { loadTrajectoryFile } from '../io/trajectoryFile.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from '../memory/voxelGrid.ts';
import { loadModel, MODEL_NAMES } from '../models/registry.ts';
import { promptForScene } from '../scene/prompts.ts';
import { sampleTrajectory } from '../world/trajectory.ts';
import { intArg, runTool, sceneArg } from './cli.ts';

const USAGE = `usage: npm run render -- (--scene NAME|FILE.json | --prompt TEXT) --trajectory FILE.json --out DIR
                       [--model ${MODEL_NAMES.join('|')}] [--prompt TEXT] [--seed N] [--k N]
                       [--no-memory] [--voxel METRES] [--contact-sheet FILE.png]

Generates a clip sequence along the trajectory, headless, and writes every frame as DIR/NNNNN.png.
With --scene the world starts from the scene's ground truth at the first pose (the initial image)
and the model invents the rest; with only --prompt it starts empty and the model invents every
pixel from the prompt. Either way it is conditioned on the spatial memory (unless --no-memory).
--contact-sheet also writes 12 frames evenly spaced along the walk, half size, 4 to a row.
Formats: docs/formats.md.`;

/** Frames on a contact sheet, to a row, and how much each is shrunk. */
const SHEET_FRAMES = 12;
const SHEET_COLUMNS = 4;
const SHEET_SHRINK = 2;

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
      'contact-sheet': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!(values.scene || values.prompt) || !values.trajectory || !values.out)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      '--trajectory, --out and --scene or --prompt (or both) are required',
    );
  const scene = values.scene ? sceneArg(values.scene) : undefined;
  const sheetPath = values['contact-sheet'];
  if (sheetPath !== undefined && !sheetPath.endsWith('.png'))
    throw new SpatiaError('INVALID_ARGUMENT', `--contact-sheet must name a .png file, got "${sheetPath}"`);
  const trajectory = loadTrajectoryFile(resolve(values.trajectory));
  const seed = intArg('seed', values.seed, 0, 0xffffffff);
  const k = intArg('k', values.k, 0, 64);
  const voxelSizeM = Number(values.voxel);
  validateVoxelSize(voxelSizeM);
  const model = await loadModel(values.model, scene ? { scene } : {});
  const info = model.describe();
  const poses = sampleTrajectory(trajectory, info.fps);
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  process.stdout.write(
    `rendering ${poses.length - 1} frames of ${scene ? `"${scene.name}"` : 'an empty world'} with ${info.name} (${info.width}×${info.height}, ${info.device}), memory ${values['no-memory'] ? 'off' : 'on'}\n`,
  );
  const bar = new SingleBar({
    format: 'render [{bar}] {value}/{total} frames | {fps} fps | {voxels} voxels | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(poses.length - 1, 0, { fps: '-', voxels: 0 });
  const t0 = performance.now();
  const memory = SpatialMemory.create(voxelSizeM);
  const frameCount = poses.length - 1;
  // The frames the contact sheet shows (1-based, as onFrame counts), evenly spaced from first to last.
  const sheetAt = new Set(
    Array.from(
      { length: Math.min(SHEET_FRAMES, frameCount) },
      (_v, j) => 1 + Math.round((j * (frameCount - 1)) / Math.max(1, Math.min(SHEET_FRAMES, frameCount) - 1)),
    ),
  );
  const sheet: Uint8Array[] = [];
  const prompt = values.prompt ?? (scene ? promptForScene(scene) : '');
  await drive({
    ...(scene ? { scene } : {}),
    model,
    poses,
    memory,
    seed,
    director: { memory: !values['no-memory'], k, prompt },
    onFrame: (f, i) => {
      if (sheetPath !== undefined && sheetAt.has(i)) sheet.push(f.rgb.slice());
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
  if (sheetPath !== undefined) {
    const c = contactSheet(sheet, info.width, info.height, SHEET_COLUMNS, SHEET_SHRINK);
    writeFileSync(resolve(sheetPath), encodeRgbPng(c.rgb, c.width, c.height));
    process.stdout.write(`wrote a contact sheet of ${sheet.length} frames to ${resolve(sheetPath)}
`);
  }
  process.stdout.write(
    `wrote ${poses.length - 1} frames to ${outDir} (memory: ${memory.voxelCount} voxels)\n`,
  );
}

runTool(USAGE, main);
