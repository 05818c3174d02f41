import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRgbdFrame, readSequence } from '../../server/io/rgbdSequence.ts';
import { CAPTURE_FUSE } from '../../server/memory/fuse.ts';
import { CAPTURE_RENDER } from '../../server/memory/renderView.ts';
import { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import type { RgbdImage } from '../../shared/image.ts';
import type { BenchResult } from './harness.ts';
import { extrinsic, runOpen3dScript } from './open3d.ts';

/**
 * The memory on real captured data (`../shared/data/tum-fr3-cabinet`, where present) beside
 * Open3D's TSDF in the same run: fuse every frame but every 4th, render the held-out poses, and
 * compare both renders with the held-out frames over the pixels both cover (and the frame measured).
 */
const here = dirname(fileURLToPath(import.meta.url));
const TUM_DIR = join(here, '../../../shared/data/tum-fr3-cabinet');
const VOXEL_SIZES = [0.01, 0.02];
/** Kinect depth beyond this is noise; both systems get the same cut. */
const DEPTH_MAX_M = 4;
const PEER = 'Open3D TSDF (VoxelBlockGrid integrate + ray_cast)';

interface Scores {
  /** PSNR over the pixels both systems cover, all held-out frames together. */
  psnrCommon: number;
  /** Median |render depth − measured depth| over those pixels, metres. */
  depthErrMedian: number;
  /** Share of measured held-out pixels the render covers. */
  coverage: number;
  fuseRenderMs: number;
}

function score(
  renders: { rgb: Uint8Array; depth: Float32Array }[],
  others: { depth: Float32Array }[],
  truths: RgbdImage[],
  ms: number,
): Scores {
  let se = 0;
  let n = 0;
  let measured = 0;
  let covered = 0;
  const errs: number[] = [];
  renders.forEach((r, f) => {
    const gt = truths[f]!;
    const other = others[f]!;
    for (let p = 0; p < gt.depth.length; p++) {
      if (!(gt.depth[p]! > 0)) continue;
      measured++;
      if (r.depth[p]! > 0) covered++;
      if (!(r.depth[p]! > 0 && other.depth[p]! > 0)) continue;
      for (let c = 0; c < 3; c++) se += (r.rgb[p * 3 + c]! - gt.rgb[p * 3 + c]!) ** 2;
      n += 3;
      errs.push(Math.abs(r.depth[p]! - gt.depth[p]!));
    }
  });
  errs.sort((a, b) => a - b);
  return {
    psnrCommon: 10 * Math.log10((255 * 255) / (se / Math.max(1, n))),
    depthErrMedian: errs[errs.length >> 1] ?? Number.NaN,
    coverage: covered / Math.max(1, measured),
    fuseRenderMs: ms,
  };
}

export async function benchRealData(): Promise<BenchResult[]> {
  if (!existsSync(TUM_DIR)) {
    process.stderr.write(`\nno real data at ${TUM_DIR}: the realdata rows are skipped\n`);
    return [];
  }
  const seq = readSequence(TUM_DIR, 'tum');
  const k = seq.intrinsics;
  process.stderr.write(`real data: ${seq.frames.length} TUM frames (${k.width}×${k.height})…\n`);
  const images: RgbdImage[] = [];
  for (const f of seq.frames) {
    const img = await loadRgbdFrame(f.colorPath, f.depthPath, k, seq.depthScale);
    for (let p = 0; p < img.depth.length; p++) if (img.depth[p]! > DEPTH_MAX_M) img.depth[p] = 0;
    images.push(img);
  }
  const indices = seq.frames.map((_f, i) => i);
  const train = indices.filter((i) => i % 4 !== 3);
  const test = indices.filter((i) => i % 4 === 3);
  const poses = seq.frames.map((f) => f.pose);

  // Open3D first: it writes its renders for the comparison.
  const dir = mkdtempSync(join(tmpdir(), 'spatia-realdata-'));
  let peer: Record<string, { fuse_ms: number; render_ms: number }> | undefined;
  try {
    writeFileSync(
      join(dir, 'meta.json'),
      JSON.stringify({
        width: k.width,
        height: k.height,
        fx: k.fx,
        fy: k.fy,
        cx: k.cx,
        cy: k.cy,
        depth_max: DEPTH_MAX_M,
        voxel_sizes: VOXEL_SIZES,
        train,
        test,
        world_to_camera: Object.fromEntries(indices.map((i) => [String(i), extrinsic(poses[i]!)])),
      }),
    );
    for (const i of indices) {
      writeFileSync(join(dir, `frame_${i}_rgb.u8`), images[i]!.rgb);
      writeFileSync(join(dir, `frame_${i}_depth.f32`), new Uint8Array(images[i]!.depth.buffer));
    }
    process.stderr.write('running Open3D’s TSDF on the same frames…\n');
    peer = runOpen3dScript<Record<string, { fuse_ms: number; render_ms: number }>>(
      'open3d_realdata.py',
      dir,
      'the realdata rows are skipped',
    );
    if (!peer) return [];
    const results: BenchResult[] = [];
    for (const vs of VOXEL_SIZES) {
      const memory = SpatialMemory.create(vs);
      const t0 = performance.now();
      for (const i of train) memory.fuse(images[i]!, poses[i]!, k, CAPTURE_FUSE);
      const fuseMs = performance.now() - t0;
      const t1 = performance.now();
      const ours = test.map((i) => memory.render(poses[i]!, k, CAPTURE_RENDER));
      const renderMs = performance.now() - t1;
      // The play path's defaults (fuse and render) for comparison.
      const playMemory = SpatialMemory.create(vs);
      for (const i of train) playMemory.fuse(images[i]!, poses[i]!, k);
      const plainRenders = test.map((i) => playMemory.render(poses[i]!, k));
      const tsdf = test.map((i) => ({
        rgb: new Uint8Array(readFileSync(join(dir, `tsdf_${vs}_${i}_rgb.u8`))),
        depth: new Float32Array(new Uint8Array(readFileSync(join(dir, `tsdf_${vs}_${i}_depth.f32`))).buffer),
      }));
      const truths = test.map((i) => images[i]!);
      const p = peer[String(vs)]!;
      const a = score(ours, tsdf, truths, fuseMs + renderMs);
      const plain = score(plainRenders, tsdf, truths, 0);
      const b = score(tsdf, ours, truths, p.fuse_ms + p.render_ms);
      const common = `${train.length} frames fused, ${test.length} held out, ${vs} m voxels`;
      results.push(
        {
          name: `realdata.tum.psnrCommon.v${vs}`,
          value: a.psnrCommon,
          unit: 'dB',
          peerName: PEER,
          peerValue: b.psnrCommon,
          note: `${common}; over the pixels both cover; fused and rendered as captures are (play defaults ${plain.psnrCommon.toFixed(2)} dB)`,
        },
        {
          name: `realdata.tum.depthErrMedian.v${vs}`,
          value: a.depthErrMedian,
          unit: 'm',
          peerName: PEER,
          peerValue: b.depthErrMedian,
          note: `median |rendered − measured depth| over the pixels both cover (play defaults ${(100 * plain.depthErrMedian).toFixed(1)} cm)`,
        },
        {
          name: `realdata.tum.coverage.v${vs}`,
          value: a.coverage,
          unit: 'share',
          peerName: PEER,
          peerValue: b.coverage,
          note: 'share of the held-out frames’ measured pixels the render covers',
        },
        {
          name: `realdata.tum.fuseRenderMs.v${vs}`,
          value: a.fuseRenderMs,
          unit: 'ms',
          peerName: PEER,
          peerValue: b.fuseRenderMs,
          note: `fuse ${fuseMs.toFixed(0)} + render ${renderMs.toFixed(0)} ms; Open3D ${p.fuse_ms.toFixed(0)} + ${p.render_ms.toFixed(0)} ms, one thread each`,
        },
      );
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
