import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { ProceduralModel, reprojectInto } from '../../../server/models/procedural/proceduralModel.ts';
import type { ClipRequest, GeneratedFrame, MemoryViewImage } from '../../../server/models/worldModel.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { type Pose, poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

const W = 256;
const H = 144;

async function collect(model: ProceduralModel, req: ClipRequest): Promise<GeneratedFrame[]> {
  const out: GeneratedFrame[] = [];
  for await (const f of model.generate(req)) out.push(f);
  return out;
}

/** A request over 4 poses turning right from the room's spawn; the memory holds the first view only. */
function roomRequest(seed: number, overrides: Partial<ClipRequest> = {}): ClipRequest {
  const model = new ProceduralModel({ width: W, height: H });
  const k = model.intrinsics;
  const scene = sceneNamed('room');
  const start = poseFromYawPitch([0, 1.6, 2.2], 0, -0.1);
  const memory = SpatialMemory.create(0.02);
  memory.fuse(renderScene(scene, start, k), start, k);
  const poses: Pose[] = [0, 1, 2, 3].map((i) => poseFromYawPitch([0, 1.6, 2.2], i * 0.6, -0.1));
  const memoryViews: MemoryViewImage[] = poses.map((p) => memory.render(p, k));
  return {
    clipId: 0,
    poses,
    intrinsics: k,
    memoryViews,
    references: [],
    preceding: [],
    prompt: 'a cozy room',
    seed,
    timeS: 0,
    ...overrides,
  };
}

describe('procedural world model', () => {
  it('keeps no state: fresh instances and repeated calls give identical frames', async () => {
    const req = roomRequest(7);
    const a = await collect(new ProceduralModel({ width: W, height: H }), req);
    const shared = new ProceduralModel({ width: W, height: H });
    await collect(shared, roomRequest(99)); // an unrelated call first must change nothing
    const b = await collect(shared, req);
    expect(a).toHaveLength(4);
    for (let i = 0; i < a.length; i++) {
      expect(Buffer.from(b[i]!.rgb).equals(Buffer.from(a[i]!.rgb))).toBe(true);
      expect(Buffer.from(b[i]!.depth!.buffer).equals(Buffer.from(a[i]!.depth!.buffer))).toBe(true);
      expect(Buffer.from(b[i]!.dynamicMask!).equals(Buffer.from(a[i]!.dynamicMask!))).toBe(true);
    }
  });

  it('reproduces the memory where it covers the frame and invents what the prompt places where it does not', async () => {
    const req1 = roomRequest(1);
    const a = await collect(new ProceduralModel({ width: W, height: H }), req1);
    // Another clip seed invents the same (props are placed by the prompt), another prompt does not.
    const again = await collect(new ProceduralModel({ width: W, height: H }), roomRequest(2));
    for (let i = 0; i < 4; i++) expect(again[i]!.rgb).toEqual(a[i]!.rgb);
    const b = await collect(
      new ProceduralModel({ width: W, height: H }),
      roomRequest(1, { prompt: 'a room in a dungeon' }),
    );
    // Frame 0 looks where the memory is: static covered pixels are the memory view's, whatever the seed.
    const view = req1.memoryViews[0]!;
    let covered = 0;
    let same = 0;
    for (let p = 0; p < W * H; p++) {
      if (!view.coverage[p] || a[0]!.dynamicMask![p]) continue;
      covered++;
      if (a[0]!.rgb[p * 3] === view.rgb[p * 3] && a[0]!.rgb[p * 3 + 1] === view.rgb[p * 3 + 1]) same++;
    }
    expect(covered).toBeGreaterThan(W * H * 0.5);
    expect(same / covered).toBeGreaterThan(0.99);
    // The last frame looks 1.8 rad away, mostly at nothing remembered: the prompts invent different content.
    const last = req1.memoryViews[3]!;
    let empty = 0;
    let differ = 0;
    for (let p = 0; p < W * H; p++) {
      if (last.coverage[p]) continue;
      empty++;
      const d =
        Math.abs(a[3]!.rgb[p * 3]! - b[3]!.rgb[p * 3]!) +
        Math.abs(a[3]!.rgb[p * 3 + 1]! - b[3]!.rgb[p * 3 + 1]!);
      if (d > 6) differ++;
    }
    expect(empty).toBeGreaterThan(W * H * 0.3);
    expect(differ / empty).toBeGreaterThan(0.2);
    // Depth is output everywhere the frame shows a surface (the room is closed).
    const withDepth = a[3]!.depth!.filter((d) => d > 0).length;
    expect(withDepth / (W * H)).toBeGreaterThan(0.95);
  });

  it('rejects malformed requests with coded errors', async () => {
    const model = new ProceduralModel({ width: W, height: H });
    const base = roomRequest(1);
    const nanPose: Pose = { rotation: base.poses[0]!.rotation, position: [Number.NaN, 0, 0] };
    const cases: [Partial<ClipRequest>, string][] = [
      [{ poses: [nanPose, ...base.poses.slice(1)] }, 'INVALID_POSE'],
      [{ memoryViews: base.memoryViews.slice(1) }, 'INVALID_ARGUMENT'],
      [
        {
          memoryViews: base.memoryViews.map((v) => ({ ...v, rgb: new Uint8Array(10) })),
        },
        'BUFFER_SIZE',
      ],
      [{ intrinsics: { ...base.intrinsics, width: 512, height: 288 } }, 'BUFFER_SIZE'],
      [{ seed: -1 }, 'INVALID_ARGUMENT'],
      [{ seed: 1.5 }, 'INVALID_ARGUMENT'],
      [{ timeS: Number.POSITIVE_INFINITY }, 'INVALID_ARGUMENT'],
      [{ poses: [], memoryViews: [] }, 'INVALID_ARGUMENT'],
      [
        { preceding: [{ pose: base.poses[0]!, intrinsics: base.intrinsics, rgb: new Uint8Array(3) }] },
        'BUFFER_SIZE',
      ],
    ];
    for (const [override, code] of cases) {
      const err = await collect(model, { ...base, ...override }).catch((e: unknown) => e);
      expect(err, JSON.stringify(Object.keys(override))).toBeInstanceOf(SpatiaError);
      expect((err as SpatiaError).code).toBe(code);
    }
  });

  it('stops a clip when its signal aborts', async () => {
    const model = new ProceduralModel({ width: W, height: H });
    const ctrl = new AbortController();
    const got: number[] = [];
    const err = await (async () => {
      for await (const f of model.generate(roomRequest(1, { signal: ctrl.signal }))) {
        got.push(f.index);
        if (f.index === 1) ctrl.abort();
      }
    })().catch((e: unknown) => e);
    expect(got).toEqual([0, 1]);
    expect((err as SpatiaError).code).toBe('CANCELLED');
  });
});

describe('reprojecting a reference frame', () => {
  // A 2 m-away square in front of a wall 10 m away, seen again 0.25 m to the right: the wall strip
  // the square uncovers must not take the square's colour (fused, a spread edge grows the object).
  it('spreads a foreground edge at most half a pixel over the background it uncovers', () => {
    const k = intrinsicsFromFov(64, 48, 75);
    const n = k.width * k.height;
    const rgb = new Uint8Array(n * 3);
    const depth = new Float32Array(n);
    for (let v = 0; v < k.height; v++)
      for (let u = 0; u < k.width; u++) {
        const p = v * k.width + u;
        const square = u >= 24 && u < 39 && v >= 16 && v < 31;
        depth[p] = square ? 2 : 10;
        rgb[p * 3] = square ? 255 : 0;
        rgb[p * 3 + 2] = square ? 0 : 255;
      }
    const ref = { pose: poseFromYawPitch([0, 0, 0], 0, 0), intrinsics: k, rgb, depth };
    const target = poseFromYawPitch([0.25, 0, 0], 0, 0);
    const out = { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), known: new Uint8Array(n) };
    reprojectInto(ref, target, k, out.rgb, out.depth, out.known);
    // The square's true edges in the target: source edges at u = 23.5 and 38.5, shifted by f·0.25/2.
    const shift = (k.fx * 0.25) / 2;
    const left = 23.5 - shift;
    const right = 38.5 - shift;
    let outside = 0;
    let inside = 0;
    for (let v = 0; v < k.height; v++)
      for (let u = 0; u < k.width; u++) {
        const p = v * k.width + u;
        if (out.rgb[p * 3] !== 255) continue;
        if (u < left - 0.5 || u > right + 0.5 || v < 15.5 || v > 30.5) outside++;
        else inside++;
      }
    expect(inside).toBeGreaterThan(13 * 14);
    expect(outside).toBe(0);
  });

  it('fills a few unknown pixels exactly as it fills them in an empty view (whole tiles skipped)', () => {
    const k = intrinsicsFromFov(W, H, 75);
    const n = W * H;
    const scene = sceneNamed('courtyard');
    const from = poseFromYawPitch([0, 1.6, 3], 0, -0.1);
    const ref = { pose: from, intrinsics: k, ...renderScene(scene, from, k) };
    // Walked forward and turned a little: magnified footprints, some reaching behind the frame.
    const to = poseFromYawPitch([0.3, 1.6, 2.2], 0.15, -0.05);
    const holes = new Uint8Array(n); // a square and a scattering of single pixels unknown
    for (let v = 100; v < 116; v++) for (let u = 100; u < 120; u++) holes[v * W + u] = 1;
    for (let p = 0; p < n; p += 997) holes[p] = 1;
    const sparse = { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), known: holes.map((h) => 1 - h) };
    const empty = { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), known: new Uint8Array(n) };
    const filledSparse = reprojectInto(ref, to, k, sparse.rgb, sparse.depth, sparse.known);
    reprojectInto(ref, to, k, empty.rgb, empty.depth, empty.known);
    let holesFilled = 0;
    for (let p = 0; p < n; p++) {
      if (holes[p] === 0) continue;
      expect(sparse.depth[p]).toBe(empty.depth[p]);
      for (let c = 0; c < 3; c++) expect(sparse.rgb[p * 3 + c]).toBe(empty.rgb[p * 3 + c]);
      if (empty.depth[p]! > 0) holesFilled++;
    }
    expect(filledSparse).toBe(holesFilled);
    expect(holesFilled).toBeGreaterThan(150);
  });
});
