import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { encodeRgbPng } from '../../../server/io/png.ts';
import { fuseFrame } from '../../../server/memory/fuse.ts';
import { topDownMap } from '../../../server/memory/topDownMap.ts';
import { VoxelGrid } from '../../../server/memory/voxelGrid.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';

/** A flat surface `distanceM` in front of a camera at `pose`, one colour. */
function flatFrame(
  k: ReturnType<typeof intrinsicsFromFov>,
  distanceM: number,
  colour: [number, number, number],
) {
  const n = k.width * k.height;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) rgb.set(colour, p * 3);
  return { width: k.width, height: k.height, rgb, depth: new Float32Array(n).fill(distanceM) };
}

describe('top-down map (the minimap)', () => {
  it('draws the floor it remembers, sized to its extent, and leaves out what lies above the ceiling', () => {
    const k = intrinsicsFromFov(64, 48, 60);
    const grid = new VoxelGrid(0.02);
    const down = poseFromYawPitch([1, 1.6, -2], 0, -Math.PI / 2);
    fuseFrame(grid, flatFrame(k, 1.6, [200, 40, 40]), down, k);
    const before = topDownMap(grid, 16);
    // A red floor patch about 1.85 × 1.4 m (60° across at 1.6 m), plus the 0.5 m margin each side.
    expect(before.width).toBeGreaterThan(16 * 2.5);
    expect(before.width).toBeLessThan(16 * 3.2);
    const centre =
      (Math.floor((-2 - before.originZ) * 16) * before.width + Math.floor((1 - before.originX) * 16)) * 3;
    expect(before.rgb[centre]).toBeGreaterThan(100); // red, dimmed as the lowest surface
    expect(before.rgb[centre + 1]).toBeLessThan(40);
    expect(before.rgb[0]).toBe(24); // the margin is background

    // A ceiling at 3.2 m (above the 2.6 m cut) seen from below changes nothing.
    const up = poseFromYawPitch([1, 1.6, -2], 0, Math.PI / 2);
    fuseFrame(grid, flatFrame(k, 1.6, [40, 200, 40]), up, k);
    const after = topDownMap(grid, 16);
    expect([after.width, after.height, after.originX, after.originZ]).toEqual([
      before.width,
      before.height,
      before.originX,
      before.originZ,
    ]);
    expect(Buffer.from(after.rgb).equals(Buffer.from(before.rgb))).toBe(true);

    // As the server sends it: an RGB PNG that decodes to the same pixels.
    const png = PNG.sync.read(encodeRgbPng(after.rgb, after.width, after.height));
    expect([png.width, png.height]).toEqual([after.width, after.height]);
    let mismatched = 0;
    for (let p = 0; p < after.width * after.height; p++)
      for (let c = 0; c < 3; c++) if (png.data[p * 4 + c] !== after.rgb[p * 3 + c]) mismatched++;
    expect(mismatched).toBe(0);
  });
});
