import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SpatiaError } from '../../shared/errors.ts';
import {
  type ClosedLoopRow,
  closedLoop,
  type DriftRow,
  defaultLoop,
  drift,
  type FidelityRow,
  fidelity,
  type LeakageRow,
  leakage,
  type TurnBackRow,
  turnBack,
  turnBackPath,
} from '../eval/consistencyEval.ts';
import { EDIT_EXPERIMENTS, type EditRow, editExperiment } from '../eval/editEval.ts';
import {
  type CapturedFrame,
  type CaptureScore,
  captureFidelity,
  captureRevisit,
} from '../eval/realDataEval.ts';
import { linePlotPng } from '../io/plot.ts';
import { loadRgbdFrame, readSequence, SEQUENCE_FORMATS, type SequenceFormat } from '../io/rgbdSequence.ts';
import { loadTrajectoryFile } from '../io/trajectoryFile.ts';
import { isModelName, loadModel, type ModelName } from '../models/registry.ts';
import { modelIntrinsics } from '../models/worldModel.ts';
import { BUNDLED_SCENES, loadBundledScene } from '../scene/loadScene.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { sampleTrajectory, type Trajectory } from '../world/trajectory.ts';
import { intArg, runTool, sceneArg } from './cli.ts';

const USAGE = `usage: npm run eval -- [--scene NAME|FILE.json --trajectory FILE.json] [--json FILE] [--out DIR]
                     [--drift-frames N] [--models procedural,onnx] [--quick]
       npm run eval -- --dataset tum|7scenes|generic:DIR [--json FILE]

Reproduces the paper's experiments on the bundled scenes (room, courtyard, hall-dynamic)
and prints one table: closed loop (last vs first frame, memory on/off, K 0/7), turn back (walk in,
turn around, walk back facing unseen space, face the start: last vs first frame, memory on/off,
ghost voxels), memory fidelity
for voxel sizes 0.01-0.07 m at held-out poses, dynamic leakage (ghost voxels), drift over a loop,
and editing (courtyard, room: erase an object or place one after the first frame, walk in and back:
ghost voxels in the erased box, PSNR outside the edit against the unedited walk, share of the
placed object's pixels shown).
Writes DIR/drift.png (PSNR per frame) and, with --json, the numbers as JSON.
Formats of scene and trajectory files: docs/formats.md. --quick: short loops (a smoke run).
--models: the world models whose closed-loop rows are measured (default procedural; the first also
runs the drift loop). --dataset measures the memory on a captured RGB-D sequence instead (layouts:
docs/formats.md): fidelity (every 4th frame held out) for voxel sizes 0.01-0.05 m and revisit (the
first 85 % fused, the rest rendered): coverage, PSNR, SSIM and median depth error.`;

const CAPTURE_VOXEL_SIZES = [0.01, 0.02, 0.03, 0.05];
const CAPTURE_REVISIT_VOXEL_SIZES = [0.01, 0.02];

const VOXEL_SIZES = [0.01, 0.03, 0.05, 0.07];
const PLOT_COLORS: [number, number, number][] = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [148, 103, 189],
  [255, 127, 14],
];

interface EvalPlan {
  readonly scenes: { scene: Scene; loop: Trajectory; driftLoop: Trajectory }[];
  readonly jsonPath?: string;
  readonly outDir: string;
  readonly models: ModelName[];
}

function plan(argv: string[]): EvalPlan {
  const { values } = parseArgs({
    args: argv,
    options: {
      scene: { type: 'string' },
      trajectory: { type: 'string' },
      json: { type: 'string' },
      out: { type: 'string', default: 'out/eval' },
      'drift-frames': { type: 'string', default: '500' },
      quick: { type: 'boolean', default: false },
      models: { type: 'string', default: 'procedural' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const driftFrames = values.quick ? 48 : intArg('drift-frames', values['drift-frames'], 16, 100_000);
  const loopS = values.quick ? 1.6 : 4;
  const custom = values.trajectory ? loadTrajectoryFile(resolve(values.trajectory)) : undefined;
  const scenes = values.scene ? [sceneArg(values.scene)] : BUNDLED_SCENES.map((n) => loadBundledScene(n));
  return {
    scenes: scenes.map((scene) => ({
      scene,
      loop: custom ?? defaultLoop(scene, loopS),
      driftLoop: custom ?? defaultLoop(scene, driftFrames / 30),
    })),
    jsonPath: values.json ? resolve(values.json) : undefined,
    outDir: resolve(values.out),
    models: values.models.split(',').map((m) => {
      const name = m.trim();
      if (!isModelName(name) || name === 'remote' || name === 'scene')
        throw new SpatiaError('INVALID_ARGUMENT', `--models: "${name}" is not procedural or onnx`);
      return name;
    }),
  };
}

/** Closed-loop rows per model: memory on with K = 7 and K = 0, memory off; then the oracle once. */
function closedLoopConfigs(models: readonly ModelName[]): { model: ModelName; memory: boolean; k: number }[] {
  return [
    ...models.flatMap((model) => [
      { model, memory: true, k: 7 },
      { model, memory: true, k: 0 },
      { model, memory: false, k: 0 },
    ]),
    { model: 'scene' as const, memory: true, k: 7 },
  ];
}
const MASKINGS = ['model', 'contradictions', 'none'] as const;

/** `--dataset FORMAT:DIR`: the memory on a captured sequence. */
async function evalCapture(spec: string, jsonPath: string | undefined): Promise<void> {
  const colon = spec.indexOf(':');
  const format = spec.slice(0, colon) as SequenceFormat;
  if (colon < 0 || !SEQUENCE_FORMATS.includes(format))
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `--dataset must be FORMAT:DIR with FORMAT one of ${SEQUENCE_FORMATS.join(', ')}`,
    );
  const seq = readSequence(resolve(spec.slice(colon + 1)), format);
  const k = seq.intrinsics;
  const bar = new SingleBar({
    format: 'eval [{bar}] {value}/{total} | {step} | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(seq.frames.length + CAPTURE_VOXEL_SIZES.length + CAPTURE_REVISIT_VOXEL_SIZES.length, 0, {
    step: 'loading frames',
  });
  const frames: CapturedFrame[] = [];
  for (const f of seq.frames) {
    frames.push({
      image: await loadRgbdFrame(f.colorPath, f.depthPath, k, seq.depthScale, seq.invalidDepth),
      pose: f.pose,
    });
    bar.increment();
  }
  const rows: CaptureScore[] = [];
  for (const v of CAPTURE_VOXEL_SIZES) {
    bar.update({ step: `fidelity ${v} m` });
    rows.push(captureFidelity(frames, k, v));
    bar.increment();
  }
  for (const v of CAPTURE_REVISIT_VOXEL_SIZES) {
    bar.update({ step: `revisit ${v} m` });
    rows.push(captureRevisit(frames, k, v));
    bar.increment();
  }
  bar.stop();
  const table: string[][] = [
    [
      'experiment',
      'voxel',
      'fused / rendered',
      'coverage',
      'PSNR dB',
      'SSIM',
      'depth err (median)',
      'voxels',
    ],
    ...rows.map((r) => [
      r.experiment,
      `${r.voxelSize} m`,
      `${r.fused} / ${r.rendered}`,
      `${(100 * r.coverage).toFixed(1)} %`,
      r.psnr.toFixed(2),
      r.ssim.toFixed(3),
      `${(100 * r.depthErrMedian).toFixed(1)} cm`,
      String(r.voxels),
    ]),
  ];
  process.stdout.write(
    `\n${seq.frames.length} frames of ${format} capture ${spec.slice(colon + 1)} (${k.width}×${k.height})\n${formatRows(table)}`,
  );
  if (jsonPath) {
    writeFileSync(jsonPath, `${JSON.stringify({ capture: rows }, null, 2)}\n`);
    process.stdout.write(`json: ${jsonPath}\n`);
  }
}

/** A plain fixed-width table: header, rule, rows. */
function formatRows(rows: string[][]): string {
  const widths = rows[0]!.map((_h, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return `${line(rows[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows
    .slice(1)
    .map((r) => `${line(r)}\n`)
    .join('')}`;
}

async function main(): Promise<void> {
  const dataset = process.argv.indexOf('--dataset');
  if (dataset >= 0) {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { dataset: { type: 'string' }, json: { type: 'string' } },
      strict: true,
    });
    return evalCapture(values.dataset!, values.json ? resolve(values.json) : undefined);
  }
  const p = plan(process.argv.slice(2));
  const framesOf = (t: Trajectory): number => sampleTrajectory(t, 30).length - 1;
  let total = 0;
  for (const s of p.scenes) {
    total +=
      closedLoopConfigs(p.models).length * framesOf(s.loop) +
      VOXEL_SIZES.length +
      framesOf(s.driftLoop) +
      2 * framesOf(turnBackPath(s.scene)) +
      (EDIT_EXPERIMENTS[s.scene.name] ? 3 * framesOf(turnBackPath(s.scene)) : 0);
    if (s.scene.entities.length > 0) total += MASKINGS.length * framesOf(s.loop);
  }
  const bar = new SingleBar({
    format: 'eval [{bar}] {percentage}% | {step} | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(total, 0, { step: '' });
  const tick = (): void => bar.increment();
  const closed: ClosedLoopRow[] = [];
  const fid: FidelityRow[] = [];
  const leak: LeakageRow[] = [];
  const drifts: DriftRow[] = [];
  const turns: TurnBackRow[] = [];
  const edits: EditRow[] = [];
  const k = modelIntrinsics();
  for (const { scene, loop, driftLoop } of p.scenes) {
    for (const c of closedLoopConfigs(p.models)) {
      bar.update({
        step: `${scene.name}: closed loop ${c.model} memory ${c.memory ? 'on' : 'off'} K=${c.k}`,
      });
      closed.push(
        await closedLoop({
          scene,
          trajectory: loop,
          modelName: c.model,
          loadModel,
          memory: c.memory,
          k: c.k,
          onFrame: tick,
        }),
      );
    }
    for (const v of VOXEL_SIZES) {
      bar.update({ step: `${scene.name}: fidelity ${v} m` });
      fid.push(fidelity(scene, loop, v, k));
      tick();
    }
    if (scene.entities.length > 0) {
      for (const m of MASKINGS) {
        bar.update({ step: `${scene.name}: leakage, masking ${m}` });
        leak.push(await leakage(scene, loop, m, {}, tick));
      }
    }
    bar.update({ step: `${scene.name}: turn back` });
    turns.push(await turnBack(scene, p.models[0]!, loadModel, {}, tick));
    bar.update({ step: `${scene.name}: drift` });
    drifts.push(await drift(scene, driftLoop, p.models[0]!, loadModel, {}, tick));
    if (EDIT_EXPERIMENTS[scene.name]) {
      bar.update({ step: `${scene.name}: edit (erase, place)` });
      edits.push(...(await editExperiment(scene, p.models[0]!, loadModel, tick)));
    }
  }
  bar.stop();
  printTable(closed, turns, fid, leak, drifts, edits);
  mkdirSync(p.outDir, { recursive: true });
  const plotPath = join(p.outDir, 'drift.png');
  writeFileSync(
    plotPath,
    linePlotPng(
      drifts.map((d, i) => ({
        name: d.scene,
        values: d.perFrame,
        color: PLOT_COLORS[i % PLOT_COLORS.length]!,
      })),
      {
        title: 'Drift: PSNR per frame vs ground truth (procedural model, memory on)',
        xLabel: 'frame',
        yLabel: 'PSNR dB',
      },
    ),
  );
  process.stdout.write(`\nplot: ${plotPath}\n`);
  if (p.jsonPath) {
    const json = {
      closedLoop: closed,
      turnBack: turns,
      fidelity: fid,
      leakage: leak,
      drift: drifts.map(({ perFrame: _perFrame, ...row }) => row),
      edit: edits,
    };
    writeFileSync(p.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`json: ${p.jsonPath}\n`);
  }
}

function printTable(
  closed: ClosedLoopRow[],
  turns: TurnBackRow[],
  fid: FidelityRow[],
  leak: LeakageRow[],
  drifts: DriftRow[],
  edits: EditRow[],
): void {
  const rows: string[][] = [['experiment', 'scene', 'setting', 'PSNR dB', 'SSIM / other']];
  for (const r of closed)
    rows.push([
      'closed loop',
      r.scene,
      `${r.model}, memory ${r.memory ? 'on' : 'off'}, K=${r.k}`,
      r.psnr.toFixed(2),
      `SSIM ${r.ssim.toFixed(3)}`,
    ]);
  for (const r of turns)
    rows.push(
      [
        'turn back',
        r.scene,
        `${r.model}, ${r.walkM.toFixed(1)} m in and back, memory on`,
        r.psnrMemoryOn.toFixed(2),
        `${r.ghostVoxels} ghost voxels, ${r.freeSpaceRejected} px refused (free space)`,
      ],
      ['turn back', r.scene, `${r.model}, memory off`, r.psnrMemoryOff.toFixed(2), ''],
    );
  for (const r of fid)
    rows.push([
      'fidelity',
      r.scene,
      `voxel ${r.voxelSize} m`,
      r.psnr.toFixed(2),
      `coverage ${(100 * r.coverage).toFixed(1)}%, ${r.voxels} voxels`,
    ]);
  for (const r of leak)
    rows.push([
      'leakage',
      r.scene,
      `masking: ${r.masking}`,
      '',
      `${r.ghostVoxels} ghost voxels / ${r.dynamicPixels} dynamic px`,
    ]);
  for (const r of drifts)
    rows.push([
      'drift',
      r.scene,
      `${r.frames} frames (${r.comparedFrames} compared)`,
      r.psnrMean.toFixed(2),
      `min ${r.psnrMin.toFixed(2)} dB`,
    ]);
  for (const r of edits)
    rows.push([
      'edit',
      r.scene,
      r.op === 'erase' ? 'erase an object, walk in and back' : 'place an object, walk in and back',
      r.backgroundPsnr.toFixed(2),
      r.op === 'erase'
        ? `${r.ghostVoxels} ghost voxels in the erased box (PSNR: outside the edit vs unedited)`
        : `${(100 * (r.insertedVisibleFraction ?? 0)).toFixed(1)}% of the object's pixels show it`,
    ]);
  process.stdout.write(`\n${formatRows(rows)}`);
}

runTool(USAGE, main);
