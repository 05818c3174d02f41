import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { fuseFrame } from '../../server/memory/fuse.ts';
import { KeyframeStore } from '../../server/memory/keyframes.ts';
import { renderMemoryView } from '../../server/memory/renderView.ts';
import { exactIoU, viewSignature, visibleVoxelSet } from '../../server/memory/visibility.ts';
import { DEFAULT_VOXEL_SIZE_M, VoxelGrid } from '../../server/memory/voxelGrid.ts';
import { psnr } from '../../server/metrics/imageMetrics.ts';
import { loadBundledScene } from '../../server/scene/loadScene.ts';
import { type GroundTruthFrame, renderScene } from '../../server/scene/rayCaster.ts';
import { EditLog } from '../../server/world/editLog.ts';
import { type Intrinsics, intrinsicsFromFov } from '../../shared/camera/intrinsics.ts';
import { type Pose, poseFromYawPitch } from '../../shared/camera/pose.ts';
import type { EditRegion } from '../../shared/edit/editOps.ts';
import { type BenchResult, median, medianMs } from './harness.ts';
import { extrinsic, runOpen3dScript } from './open3d.ts';

const K = intrinsicsFromFov(512, 288, 75);
const PEER = 'Open3D 0.16';

const progress = (label: string, total: number): SingleBar => {
  const bar = new SingleBar({
    format: `${label.padEnd(28)} [{bar}] {value}/{total} {duration}s`,
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(total, 0);
  return bar;
};

interface PeerNumbers {
  fuse_downsample_ms: number;
  fuse_vbg_ms: number;
  render_ms: number;
  bytes_per_point: number;
  erase_ms?: number;
  erase_removed?: number;
  viewRgb: Uint8Array;
}

function runOpen3d(dir: string): PeerNumbers | undefined {
  const parsed = runOpen3dScript<Omit<PeerNumbers, 'viewRgb'>>(
    'open3d_peer.py',
    dir,
    'peer columns stay empty',
  );
  return parsed && { ...parsed, viewRgb: new Uint8Array(readFileSync(join(dir, 'open3d_view_rgb.u8'))) };
}

/** The courtyard's fountain, from 4 cm above the paving (as the eval's edit experiment erases it). */
const FOUNTAIN = {
  shape: 'box',
  min: [-2.4, 0.04, -2.4],
  max: [2.4, 2.4, 2.4],
} as const satisfies EditRegion;

/** Memory data-path benchmarks, with Open3D run on the same data in the same run. */
export function benchMemory(opts: { quick: boolean }): BenchResult[] {
  const results: BenchResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'spatia-bench-'));
  const room = loadBundledScene('room');
  const courtyard = loadBundledScene('courtyard');

  // --- fuse: a walk through the room, fused frame by frame into one growing grid ---
  const walk: { pose: Pose; frame: GroundTruthFrame }[] = [];
  const steps = opts.quick ? 12 : 40;
  const bar = progress('rendering ground truth', steps);
  for (let i = 0; i < steps; i++) {
    const pose = poseFromYawPitch(
      [-1 + (2 * i) / steps, 1.6, 2.2 - (1.5 * i) / steps],
      -0.5 + i / steps,
      -0.1,
    );
    walk.push({ pose, frame: renderScene(room, pose, K) });
    bar.increment();
  }
  bar.stop();
  const fuseRow = (vs: number, freeSpace = true): number => {
    // Warm the JIT on a throwaway grid, then time the walk on a fresh one.
    const warm = new VoxelGrid(vs);
    for (const { pose, frame } of walk.slice(0, 5)) fuseFrame(warm, frame, pose, K, { freeSpace });
    const grid = new VoxelGrid(vs);
    const times = walk.map(({ pose, frame }) => {
      const t0 = performance.now();
      fuseFrame(grid, frame, pose, K, { freeSpace });
      return performance.now() - t0;
    });
    return median(times);
  };

  // --- render: ≥ 1 M voxels of the courtyard, all in front of the camera ---
  const cloud = new VoxelGrid(0.01);
  for (let i = 0; cloud.voxelCount < 1_000_000 && i < 64; i++) {
    const pose = poseFromYawPitch(
      [-3 + (i % 7), 1.7, 7 - Math.floor(i / 7) * 0.5],
      ((i % 5) - 2) * 0.12,
      -0.12,
    );
    fuseFrame(cloud, renderScene(courtyard, pose, K), pose, K);
  }
  cloud.trim();
  const viewPose = poseFromYawPitch([0.5, 1.75, 7.2], 0.05, -0.12);
  const viewGt = renderScene(courtyard, viewPose, K);
  let view = renderMemoryView(cloud, viewPose, K);
  // With and without free space in alternation, so both see the same machine state.
  const withFree: number[] = [];
  const withoutFree: number[] = [];
  for (let i = 0; i < (opts.quick ? 6 : 24); i++) {
    const t0 = performance.now();
    view = renderMemoryView(cloud, viewPose, K);
    const t1 = performance.now();
    renderMemoryView(cloud, viewPose, K, { freeSpace: false });
    const t2 = performance.now();
    if (i < 3) continue; // warm-up
    withFree.push(t1 - t0);
    withoutFree.push(t2 - t1);
  }
  const renderMs = median(withFree);
  const renderNoFreeMs = median(withoutFree);
  let inView = 0;
  for (const c of view.chunks) inView += c.count;

  // Data for the peer: the first walk frame, and the cloud as float xyz + rgb.
  const f0 = walk[0]!;
  writeFileSync(join(dir, 'frame_rgb.u8'), f0.frame.rgb);
  writeFileSync(join(dir, 'frame_depth.f32'), new Uint8Array(f0.frame.depth.buffer));
  const xyz = new Float32Array(cloud.voxelCount * 3);
  const rgb = new Uint8Array(cloud.voxelCount * 3);
  let n = 0;
  cloud.forEachVoxel((v) => {
    xyz.set([v.x, v.y, v.z], n * 3);
    rgb.set([Math.round(v.r), Math.round(v.g), Math.round(v.b)], n * 3);
    n++;
  });
  writeFileSync(join(dir, 'cloud_xyz.f32'), new Uint8Array(xyz.buffer));
  writeFileSync(join(dir, 'cloud_rgb.u8'), rgb);
  writeFileSync(
    join(dir, 'meta.json'),
    JSON.stringify({
      width: K.width,
      height: K.height,
      fx: K.fx,
      fy: K.fy,
      cx: K.cx,
      cy: K.cy,
      voxel_size: DEFAULT_VOXEL_SIZE_M,
      max_depth: 20,
      frame_world_to_camera: extrinsic(f0.pose),
      view_world_to_camera: extrinsic(viewPose),
      erase_box: [...FOUNTAIN.min, ...FOUNTAIN.max],
    }),
  );
  process.stderr.write('running the Open3D peer on the same data…\n');
  const peer = runOpen3d(dir);
  rmSync(dir, { recursive: true, force: true });

  // Fuse of a single frame, the peer's exact operation: ours re-fuses frame 0 into a grid that has seen it.
  const single = new VoxelGrid(DEFAULT_VOXEL_SIZE_M);
  const singleMs = medianMs(() => fuseFrame(single, f0.frame, f0.pose, K), opts.quick ? 10 : 30);
  const peerFuse = peer ? Math.min(peer.fuse_downsample_ms, peer.fuse_vbg_ms) : undefined;
  const fuseMs = fuseRow(DEFAULT_VOXEL_SIZE_M);
  const fuseNoFreeMs = fuseRow(DEFAULT_VOXEL_SIZE_M, false);
  results.push({
    name: 'memory.fuse.512x288',
    value: fuseMs,
    unit: 'ms',
    peerName: peer ? `${PEER} (faster of down-sample / VBG integrate)` : undefined,
    peerValue: peerFuse,
    note: `median over a ${steps}-frame walk, ${DEFAULT_VOXEL_SIZE_M} m voxels; Open3D down-sample ${peer?.fuse_downsample_ms.toFixed(1) ?? '-'} ms, VBG ${peer?.fuse_vbg_ms.toFixed(1) ?? '-'} ms`,
  });
  results.push({
    name: 'memory.fuse.512x288.singleFrame',
    value: singleMs,
    unit: 'ms',
    peerName: peer ? PEER : undefined,
    peerValue: peerFuse,
    note: 'the same frame re-fused',
  });
  results.push({
    name: 'memory.fuse.512x288.noFreeSpace',
    value: fuseNoFreeMs,
    unit: 'ms',
    note: `the walk without carving free space: free space costs ${(100 * (fuseMs / fuseNoFreeMs - 1)).toFixed(0)} % (goal ≤ 20 %)`,
  });
  for (const vs of [0.01, 0.05]) {
    results.push({
      name: `memory.fuse.512x288.voxel${vs}`,
      value: fuseRow(vs),
      unit: 'ms',
      note: `walk median, ${vs} m voxels`,
    });
  }

  const mask = new Uint8Array(viewGt.depth.length);
  for (let i = 0; i < mask.length; i++) mask[i] = viewGt.depth[i]! > 0 && viewGt.depth[i]! <= 20 ? 1 : 0;
  const oursPsnr = psnr(view.rgb, viewGt.rgb, mask);
  const peerPsnr = peer ? psnr(peer.viewRgb, viewGt.rgb, mask) : undefined;
  results.push({
    name: 'memory.render.1M.512x288',
    value: renderMs,
    unit: 'ms',
    peerName: peer ? `${PEER} project_to_rgbd_image` : undefined,
    peerValue: peer?.render_ms,
    note: `${(cloud.voxelCount / 1e6).toFixed(2)} M voxels, ${(inView / 1e6).toFixed(2)} M in view chunks; PSNR vs ground truth ours ${oursPsnr.toFixed(1)} dB, peer ${peerPsnr?.toFixed(1) ?? '-'} dB`,
  });
  results.push({
    name: 'memory.render.1M.512x288.noFreeSpace',
    value: renderNoFreeMs,
    unit: 'ms',
    note: `the same view without tracing free space: free space costs ${(100 * (renderMs / renderNoFreeMs - 1)).toFixed(0)} % (goal ≤ 20 %)`,
  });
  results.push({
    name: 'memory.render.psnr',
    value: oursPsnr,
    unit: 'dB',
    peerName: peer ? PEER : undefined,
    peerValue: peerPsnr,
    note: 'same view, same points',
  });
  results.push({
    name: 'memory.bytesPerVoxel',
    value: cloud.byteLength / cloud.voxelCount,
    unit: 'bytes',
    peerName: peer ? `${PEER} PointCloud` : undefined,
    peerValue: peer?.bytes_per_point,
    note: `${cloud.voxelCount} voxels, ${(cloud.byteLength / 2 ** 20).toFixed(1)} MiB`,
  });

  // --- edit: erase the courtyard's fountain from the 1 M voxel cloud, then undo (the cloud is unchanged after) ---
  const log = new EditLog(cloud);
  const eraseTimes: number[] = [];
  const undoTimes: number[] = [];
  let removed = 0;
  for (let i = 0; i < (opts.quick ? 4 : 12); i++) {
    const t0 = performance.now();
    removed = log.apply(
      { op: 'erase', region: FOUNTAIN },
      { id: 'bench', name: 'bench' },
      new Date(0),
    ).voxels;
    const t1 = performance.now();
    log.undo('bench');
    undoTimes.push(performance.now() - t1);
    eraseTimes.push(t1 - t0);
  }
  results.push({
    name: 'memory.edit.erase.1M',
    value: median(eraseTimes.slice(2)),
    unit: 'ms',
    peerName: peer?.erase_ms !== undefined ? `${PEER} PointCloud.crop(invert)` : undefined,
    peerValue: peer?.erase_ms,
    note: `the courtyard fountain's box: ${removed} of ${cloud.voxelCount} voxels (peer: ${peer?.erase_removed ?? '-'} points, a new cloud); undo ${median(undoTimes.slice(2)).toFixed(1)} ms`,
  });

  results.push(...benchRetrieval(opts, courtyard));
  results.push(benchFuseHistory(opts, courtyard));
  return results;
}

/** Top-7 retrieval among 10 000 keyframes vs a brute-force exact IoU over full visible sets. */
/**
 * Whether fusion stays incremental: a 512×288 frame re-fused into a memory with 10 000 frames of
 * history, relative to one with 10 (goal ≤ 1.2). The history is a 400-pose loop around the
 * courtyard fused at 128×72, so that building it takes seconds; both memories end with the same
 * ten frames around the measured pose.
 */
function benchFuseHistory(opts: { quick: boolean }, scene: ReturnType<typeof loadBundledScene>): BenchResult {
  const small = intrinsicsFromFov(128, 72, 75);
  const loop = 400;
  const at = (i: number): Pose => {
    const a = (2 * Math.PI * i) / loop;
    return poseFromYawPitch(
      [4 * Math.sin(a), 1.6, 3 + 4 * Math.cos(a)],
      a + Math.PI / 2 + 0.3 * Math.sin(7 * a),
      -0.1,
    );
  };
  const frames = Array.from({ length: loop }, (_, i) => renderScene(scene, at(i), small));
  const history = opts.quick ? 1000 : 10_000;
  const measured = at(loop - 5);
  const frame = renderScene(scene, measured, K);
  const fresh = new VoxelGrid(DEFAULT_VOXEL_SIZE_M);
  const long = new VoxelGrid(DEFAULT_VOXEL_SIZE_M);
  const bar = progress(`fusing ${history} frames of history`, history);
  for (let i = 0; i < history; i++) {
    const j = (i + loop - (history % loop)) % loop; // so that both histories end at the same pose
    fuseFrame(long, frames[j]!, at(j), small);
    if (i % 100 === 0) bar.update(i);
  }
  bar.stop();
  for (let j = loop - 10; j < loop; j++) fuseFrame(fresh, frames[j]!, at(j), small);
  // One lap: the same places as the long history, seen once (separates history from density).
  const lap = new VoxelGrid(DEFAULT_VOXEL_SIZE_M);
  for (let j = 0; j < loop; j++) fuseFrame(lap, frames[j]!, at(j), small);
  // Alternate the three so that all see the same machine state.
  const freshMs: number[] = [];
  const lapMs: number[] = [];
  const longMs: number[] = [];
  for (let i = 0; i < (opts.quick ? 10 : 30) + 5; i++) {
    const t0 = performance.now();
    fuseFrame(fresh, frame, measured, K);
    const t1 = performance.now();
    fuseFrame(lap, frame, measured, K);
    const t2 = performance.now();
    fuseFrame(long, frame, measured, K);
    const t3 = performance.now();
    if (i < 5) continue;
    freshMs.push(t1 - t0);
    lapMs.push(t2 - t1);
    longMs.push(t3 - t2);
  }
  const ratio = median(longMs) / median(freshMs);
  return {
    name: 'memory.fuse.history',
    value: ratio,
    unit: 'ratio',
    note: `goal ≤ 1.2; re-fusing one 512×288 frame after ${history} frames of history ${median(longMs).toFixed(2)} ms (${long.voxelCount} voxels), after 10 ${median(freshMs).toFixed(2)} ms (${fresh.voxelCount}), after one ${loop}-frame lap of the same loop ${median(lapMs).toFixed(2)} ms (${lap.voxelCount})`,
  };
}

function benchRetrieval(opts: { quick: boolean }, scene: ReturnType<typeof loadBundledScene>): BenchResult[] {
  const vs = 0.05;
  const small: Intrinsics = intrinsicsFromFov(96, 54, 75);
  const grid = new VoxelGrid(vs);
  for (let i = 0; i < 24; i++) {
    const pose = poseFromYawPitch(
      [((i % 3) - 1) * 6, 1.7, ((Math.floor(i / 3) % 3) - 1) * 6],
      (i * Math.PI) / 4 + 0.3 * (i % 3),
      -0.1,
    );
    fuseFrame(grid, renderScene(scene, pose, small), pose, small);
  }
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  const randomPose = () =>
    poseFromYawPitch(
      [(rand() - 0.5) * 18, 1.5 + rand() * 0.5, (rand() - 0.5) * 18],
      rand() * 2 * Math.PI,
      -0.1,
    );
  const count = opts.quick ? 2000 : 10_000;
  const store = new KeyframeStore();
  const exactSets: Uint32Array[] = [];
  const bar = progress(`building ${count} keyframes`, count);
  while (store.size < count) {
    const pose = randomPose();
    const view = renderMemoryView(grid, pose, small);
    const sig = viewSignature(view);
    if (sig.sketch.length === 0) continue;
    store.add({ pose, intrinsics: small, signature: sig });
    exactSets.push(visibleVoxelSet(view));
    bar.increment();
  }
  bar.stop();
  const queries = Array.from({ length: 60 }, () => {
    const view = renderMemoryView(grid, randomPose(), small);
    return { sig: viewSignature(view), set: visibleVoxelSet(view) };
  });
  const eps = 0.1;
  const ourTimes: number[] = [];
  const bruteTimes: number[] = [];
  let found = 0;
  let wanted = 0;
  let iouGot = 0;
  let iouBest = 0;
  for (let rep = 0; rep < 3; rep++) {
    for (const q of queries) {
      let t0 = performance.now();
      const hits = store.retrieve(q.sig, { k: 7, minIoU: eps });
      ourTimes.push(performance.now() - t0);
      t0 = performance.now();
      const scored: { id: number; iou: number }[] = [];
      for (let i = 0; i < exactSets.length; i++) {
        const iou = exactIoU(q.set, exactSets[i]!);
        if (iou >= eps) scored.push({ id: i, iou });
      }
      scored.sort((a, b) => b.iou - a.iou);
      const top = scored.slice(0, 7);
      bruteTimes.push(performance.now() - t0);
      if (rep === 0) {
        const got = new Set(hits.map((h) => h.keyframe.id));
        wanted += top.length;
        found += top.filter((t) => got.has(t.id)).length;
        iouBest += top.reduce((a, t) => a + t.iou, 0);
        iouGot += hits.reduce((a, h) => a + exactIoU(q.set, exactSets[h.keyframe.id]!), 0);
      }
    }
  }
  return [
    {
      name: `memory.retrieve.${count === 10_000 ? '10k' : count}`,
      value: median(ourTimes),
      unit: 'ms',
      peerName: 'brute-force exact IoU',
      peerValue: median(bruteTimes),
      note: `top-7, ε = ${eps}, ${count} keyframes, median of ${ourTimes.length} queries`,
    },
    {
      name: 'memory.retrieve.recallAt7',
      value: wanted === 0 ? 1 : found / wanted,
      unit: 'ratio',
      note: 'share of the exact top-7 (IoU ≥ ε) that the fast path returns; misses are near-ties',
    },
    {
      name: 'memory.retrieve.iouCaptured',
      value: iouBest === 0 ? 1 : iouGot / iouBest,
      unit: 'ratio',
      note: 'exact IoU of the returned keyframes / of the exact top-7',
    },
  ];
}
