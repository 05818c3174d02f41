import { poseFromYawPitch } from '../../shared/camera/pose.ts';
import { decodeMirrorBatch, encodeMirrorBatch, type MirrorChunk } from '../../shared/protocol/mirrorCodec.ts';
import { MirrorCache } from './mirrorCache.ts';
import { WorldView } from './worldView.ts';

/**
 * `bench.html?points=N&regionBits=B&frames=F` (npm run bench:net opens it in Chromium): a mirror of
 * N synthetic points (floor chunks of 32×32 level-0 points around the camera, a wall of chunks
 * ahead), drawn F times at a fixed camera; each draw is timed to the end of the GPU's work (a
 * one-pixel read). Results on `window.benchResult`.
 */
const params = new URLSearchParams(location.search);
const points = Number(params.get('points') ?? 1_000_000);
const regionBits = Number(params.get('regionBits') ?? 2);
const frames = Number(params.get('frames') ?? 30);
const VOXEL = 0.02;
const CHUNK = 32;

function floorChunk(cx: number, cz: number, seed: number): MirrorChunk {
  const p = new Uint8Array(CHUNK * CHUNK * 6);
  let i = 0;
  for (let x = 0; x < CHUNK; x++)
    for (let z = 0; z < CHUNK; z++, i += 6) {
      p[i] = x * 8 + 4;
      p[i + 1] = 4;
      p[i + 2] = z * 8 + 4;
      const shade = 120 + (((x * 7 + z * 13 + seed) * 2654435761) >>> 27);
      p[i + 3] = shade;
      p[i + 4] = shade - 10;
      p[i + 5] = shade - 25;
    }
  return { cx, cy: 0, cz, revision: 1, level: 0, points: p };
}

const canvas = document.getElementById('view') as HTMLCanvasElement;
const view = new WorldView(canvas, 512, 288, regionBits);
const cache = new MirrorCache();
const chunks: MirrorChunk[] = [];
const perChunk = CHUNK * CHUNK;
const side = Math.ceil(Math.sqrt(points / perChunk));
for (let n = 0; n < Math.ceil(points / perChunk); n++) {
  // A square of floor chunks around the camera at the origin.
  const cx = (n % side) - (side >> 1);
  const cz = Math.floor(n / side) - (side >> 1);
  chunks.push(floorChunk(cx, cz, n));
}
const bytes = encodeMirrorBatch({ seq: 0, voxelSizeM: VOXEL, chunkVoxels: CHUNK, chunks });
const t0 = performance.now();
view.mirror.update(cache.apply(decodeMirrorBatch(bytes), bytes.length));
const gl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
const pixel = new Uint8Array(4);
const w = canvas.width;
const h = canvas.height;
const f = w * 0.65;
const k = { fx: f, fy: f, cx: (w - 1) / 2, cy: (h - 1) / 2, width: w, height: h };
const pose = poseFromYawPitch([0, 1.7, 0], 0.3, -0.35);
const times: number[] = [];
// The first draws also upload the regions (a bounded number per frame): draw until none is left.
let uploadMs = 0;
for (let i = 0; i < 10_000; i++) {
  const before = view.mirror.regionCount;
  const s = performance.now();
  view.render(pose, k, false);
  gl?.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
  uploadMs += performance.now() - s;
  if (view.mirror.regionCount === before && i > 0) break;
}
for (let i = 0; i < frames; i++) {
  const s = performance.now();
  view.render(pose, k, false);
  gl?.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
(window as unknown as { benchResult: unknown }).benchResult = {
  points: cache.points,
  chunks: cache.chunks.size,
  regions: view.mirror.regionCount,
  visiblePoints: view.mirror.visiblePoints,
  visibleRegions: view.mirror.visibleRegions,
  medianMs: times[times.length >> 1],
  minMs: times[0],
  maxMs: times.at(-1),
  loadMs: performance.now() - t0 - times.reduce((a, b) => a + b, 0),
  uploadMs,
  renderer: gl?.getParameter(gl.RENDERER) as string,
  width: w,
  height: h,
};
