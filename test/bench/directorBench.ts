import { SingleBar } from 'cli-progress';
import { defaultLoop } from '../../server/eval/consistencyEval.ts';
import { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import { DEFAULT_VOXEL_SIZE_M } from '../../server/memory/voxelGrid.ts';
import { OnnxModel } from '../../server/models/onnx/onnxModel.ts';
import { ProceduralModel } from '../../server/models/procedural/proceduralModel.ts';
import { DEFAULT_ONNX_MODEL } from '../../server/models/registry.ts';
import type { ClipRequest, MemoryViewImage } from '../../server/models/worldModel.ts';
import { loadBundledScene } from '../../server/scene/loadScene.ts';
import { renderScene } from '../../server/scene/rayCaster.ts';
import { Director } from '../../server/world/director.ts';
import { sampleTrajectory } from '../../server/world/trajectory.ts';
import { ViewThreads } from '../../server/world/viewThreads.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { type BenchResult, median } from './harness.ts';

/**
 * The procedural model's frame rate and the director's own cost per frame (everything except
 * `generate`: memory views, retrieval, fusing, keyframes), at 512×288 on the room's closed loop.
 */
export async function benchDirector(opts: { quick: boolean }): Promise<BenchResult[]> {
  const scene = loadBundledScene('room');
  const model = new ProceduralModel();
  const info = model.describe();
  const k = model.intrinsics;
  const poses = sampleTrajectory(defaultLoop(scene, opts.quick ? 2 : 6), info.fps);
  const bar = new SingleBar({
    format: `${'director / procedural model'.padEnd(28)} [{bar}] {value}/{total}`,
    clearOnComplete: true,
  });
  bar.start(poses.length * 5, 0);

  // An explored world: ground truth fused every 8th pose (what a player who walked here leaves).
  const groundTruth = poses
    .filter((_, i) => i % 8 === 0)
    .map((p) => ({ pose: p, gt: renderScene(scene, p, k) }));
  const exploredMemory = (): SpatialMemory => {
    const m = SpatialMemory.create(DEFAULT_VOXEL_SIZE_M);
    for (const { pose, gt } of groundTruth) {
      m.fuse(gt, pose, k, { excludeMask: gt.dynamicMask });
      m.addKeyframe(gt, pose, k);
    }
    return m;
  };
  const explored = exploredMemory();

  // Model alone, clip by clip, memory views precomputed (they are the director's cost).
  const modelFps = async (memory: SpatialMemory | undefined): Promise<number> => {
    let frames = 0;
    let ms = 0;
    for (let s = 0; s < poses.length; s += info.framesPerClip) {
      const clip: Pose[] = poses.slice(s, s + info.framesPerClip);
      const n = k.width * k.height;
      const views: MemoryViewImage[] = clip.map((p) =>
        memory
          ? memory.render(p, k)
          : { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), coverage: new Uint8Array(n) },
      );
      const req: ClipRequest = {
        clipId: s,
        poses: clip,
        intrinsics: k,
        memoryViews: views,
        references: [],
        preceding: [],
        prompt: 'a cozy room',
        seed: s,
        timeS: s / info.fps,
      };
      const t0 = performance.now();
      for await (const _f of model.generate(req)) {
        frames++;
        bar.increment();
      }
      ms += performance.now() - t0;
    }
    return (frames * 1000) / ms;
  };
  await modelFps(explored); // warm-up (JIT)
  const fpsExplored = await modelFps(explored);
  const fpsEmpty = await modelFps(undefined);

  // The director over the same loop, memory on, K = 7: per-frame condition + update; then again
  // from the same explored memory with one view thread (the clip's views split with this thread).
  const directorWalk = async (memory: SpatialMemory, views?: ViewThreads) => {
    const director = new Director(memory, model, { prompt: 'a cozy room', views });
    const overhead: number[] = [];
    const condition: number[] = [];
    const update: number[] = [];
    for (let s = 0, clip = 0; s < poses.length; s += info.framesPerClip, clip++) {
      for await (const f of director.runClip(poses.slice(s, s + info.framesPerClip), {
        seed: clip,
        timeS: s / info.fps,
      })) {
        overhead.push(f.timings.conditionMs + f.timings.updateMs);
        condition.push(f.timings.conditionMs);
        update.push(f.timings.updateMs);
        bar.increment();
      }
    }
    return { overhead, condition, update };
  };
  const { overhead, condition, update } = await directorWalk(explored);
  const viewThreads = new ViewThreads(1);
  const threaded = await directorWalk(exploredMemory(), viewThreads);
  await viewThreads.dispose();
  bar.stop();

  // The bundled ONNX model (128×72, 3 Euler steps) on this CPU.
  const onnx = await OnnxModel.load(DEFAULT_ONNX_MODEL, { provider: 'cpu' });
  const ok = onnx.intrinsics;
  const onnxMemory = SpatialMemory.create(0.05);
  const gt = renderScene(scene, poses[0]!, ok);
  onnxMemory.fuse(gt, poses[0]!, ok);
  const clip = poses.slice(0, 16);
  const onnxReq: ClipRequest = {
    clipId: 0,
    poses: clip,
    intrinsics: ok,
    memoryViews: clip.map((p) => onnxMemory.render(p, ok)),
    references: [],
    preceding: [],
    prompt: '',
    seed: 1,
    timeS: 0,
  };
  const onnxMs: number[] = [];
  for (let rep = 0; rep < 3; rep++)
    for await (const f of onnx.generate(onnxReq)) if (rep > 0) onnxMs.push(f.generateMs);
  await onnx.dispose();
  return [
    {
      name: 'model.onnx.ms.128x72',
      value: median(onnxMs),
      unit: 'ms',
      note: `bundled spatia-tiny.onnx, 3 Euler steps, onnxruntime-node CPU; ${(1000 / median(onnxMs)).toFixed(0)} frames/s`,
    },
    {
      name: 'model.procedural.fps.512x288',
      value: fpsExplored,
      unit: 'fps',
      note: `goal ≥ 30; explored room, 16-frame clips, one thread; empty memory (all invented): ${fpsEmpty.toFixed(1)} fps`,
    },
    {
      name: 'model.procedural.fps.512x288.empty',
      value: fpsEmpty,
      unit: 'fps',
      note: 'nothing remembered: every pixel ray-cast from the invented scene',
    },
    {
      name: 'director.overhead.512x288',
      value: median(overhead),
      unit: 'ms',
      note: `goal ≤ 4; median per frame: condition ${median(condition).toFixed(2)} ms (memory view + retrieval), update ${median(update).toFixed(2)} ms (fuse + keyframes)`,
    },
    {
      name: 'director.overhead.512x288.viewThread',
      value: median(threaded.overhead),
      unit: 'ms',
      note: `the same walk with one view thread (--view-threads 1; ${info.framesPerClip}-frame clips, views split between the thread and this one): condition ${median(threaded.condition).toFixed(2)} ms, update ${median(threaded.update).toFixed(2)} ms`,
    },
  ];
}
