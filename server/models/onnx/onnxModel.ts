import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { type Intrinsics, intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import {
  type ClipRequest,
  type ConditioningFrame,
  type GeneratedFrame,
  type MemoryViewImage,
  MODEL_DEFAULTS,
  MODEL_FOV_DEG,
  validateClipRequest,
  type WorldModel,
  type WorldModelInfo,
} from '../worldModel.ts';
import {
  buildConditioning,
  COND_CHANNELS,
  MAX_DEPTH_M,
  type WarpedFrames,
  warpFrames,
} from './conditioning.ts';
import { eulerSample, gaussianNoise, type KnownValues } from './sampler.ts';

/** The model card written beside the .onnx file by tools/train/train.py. */
const cardSchema = z.object({
  name: z.string(),
  width: z.number().int().min(8).max(4096),
  height: z.number().int().min(8).max(4096),
  condChannels: z.literal(COND_CHANNELS),
  maxDepthM: z.literal(MAX_DEPTH_M),
  sampler: z.object({ steps: z.number().int().min(1).max(100) }).optional(),
  /**
   * Whether the network's depth is worth fusing where it invents (default true). False: invented
   * pixels get no depth, so the memory keeps only what it was shown (the bundled tiny model's depth
   * is noise: see MIN_INVENTED_DEPTH_M).
   */
  inventedDepth: z.boolean().optional(),
});

export interface OnnxModelOptions {
  /** Euler steps per frame (default: the card's, else 3). */
  readonly steps?: number;
  /** `auto` tries CUDA first and falls back to CPU. */
  readonly provider?: 'auto' | 'cuda' | 'cpu';
  readonly framesPerClip?: number;
  readonly threads?: number;
}

/** The optional graph input a free-space-aware model declares: [1, 1, H, W], free depth / 20 m. */
const FREE_DEPTH_INPUT = 'free_depth';

/**
 * `--model onnx`: a flow-matching denoiser exported to ONNX (contract: docs/onnx-model.md) run
 * with onnxruntime-node. Each frame starts from seeded noise and takes `steps` Euler steps over
 * the velocity the network predicts, conditioned on the memory view, the warped references and
 * the warped preceding frame (within a clip, each generated frame is the next one's preceding).
 * It outputs RGB and depth (the fourth channel); moving things are not flagged.
 */
export class OnnxModel implements WorldModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly info: WorldModelInfo,
    private readonly steps: number,
    readonly intrinsics: Intrinsics,
    private readonly inventedDepth: boolean,
  ) {
    this.takesFreeDepth = session.inputNames.includes(FREE_DEPTH_INPUT);
  }

  /** Whether the graph declares the optional free-space input (docs/onnx-model.md). */
  private readonly takesFreeDepth: boolean;

  /** Loads and checks the model (names, shapes, one trial run); problems are clear errors here, not mid-game. */
  static async load(path: string, opts: OnnxModelOptions = {}): Promise<OnnxModel> {
    if (!existsSync(path)) throw new SpatiaError('MODEL_FILE', `ONNX model not found: ${path}`);
    const cardPath = path.replace(/\.onnx$/, '.json');
    if (!existsSync(cardPath))
      throw new SpatiaError('MODEL_FILE', `model card not found: ${cardPath} (width, height, condChannels)`);
    let card: z.infer<typeof cardSchema>;
    try {
      const parsed = cardSchema.safeParse(JSON.parse(readFileSync(cardPath, 'utf8')));
      if (!parsed.success)
        throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      card = parsed.data;
    } catch (e) {
      throw new SpatiaError('MODEL_FILE', `model card ${cardPath} is invalid: ${(e as Error).message}`);
    }
    // `auto` tries CUDA only where its provider library is installed: trying it elsewhere made
    // onnxruntime print a red load error at every start-up before falling back (issue 18).
    const cudaInstalled = cudaProviderInstalled();
    const providers =
      opts.provider === 'cpu'
        ? ['cpu']
        : opts.provider === 'cuda'
          ? ['cuda']
          : cudaInstalled
            ? ['cuda', 'cpu']
            : ['cpu'];
    let session: ort.InferenceSession | undefined;
    let provider = 'cpu';
    let lastError: unknown;
    for (const p of providers) {
      try {
        session = await ort.InferenceSession.create(path, {
          executionProviders: [p],
          intraOpNumThreads: opts.threads ?? 2,
          graphOptimizationLevel: 'all',
          // A missing CUDA provider is expected on CPU machines: keep its load failure out of the log.
          logSeverityLevel: p === 'cuda' && providers.length > 1 ? 4 : 2,
        });
        provider = p;
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (!session)
      throw new SpatiaError(
        'MODEL_FILE',
        `cannot load ${path}: ${(lastError as Error)?.message ?? lastError}`,
      );
    const need = ['x_t', 't', 'cond'];
    for (const name of need)
      if (!session.inputNames.includes(name))
        throw new SpatiaError(
          'MODEL_FILE',
          `${path} has inputs [${session.inputNames.join(', ')}], the contract needs [${need.join(', ')}]`,
        );
    if (!session.outputNames.includes('velocity'))
      throw new SpatiaError(
        'MODEL_FILE',
        `${path} has outputs [${session.outputNames.join(', ')}], the contract needs [velocity]`,
      );
    const { width, height } = card;
    const model = new OnnxModel(
      session,
      {
        name: 'onnx',
        width,
        height,
        fps: MODEL_DEFAULTS.fps,
        framesPerClip: opts.framesPerClip ?? MODEL_DEFAULTS.framesPerClip,
        outputsDepth: true,
        outputsDynamicMask: false,
        device:
          provider === 'cuda'
            ? 'cuda:0 (onnxruntime)'
            : cudaInstalled || opts.provider === 'cpu'
              ? 'cpu (onnxruntime)'
              : 'cpu (onnxruntime; no CUDA provider installed)',
      },
      opts.steps ?? card.sampler?.steps ?? 3,
      intrinsicsFromFov(width, height, MODEL_FOV_DEG),
      card.inventedDepth ?? true,
    );
    // One trial step with zeros: a model whose shapes do not fit fails now, at start-up.
    try {
      const v = await model.velocity(
        new Float32Array(4 * width * height),
        0,
        new Float32Array(COND_CHANNELS * width * height),
      );
      if (v.length !== 4 * width * height)
        throw new Error(`velocity has ${v.length} values, expected 4×${height}×${width}`);
    } catch (e) {
      throw new SpatiaError('MODEL_FILE', `${path} does not follow the contract: ${(e as Error).message}`);
    }
    return model;
  }

  describe(): WorldModelInfo {
    return this.info;
  }

  private async velocity(
    x: Float32Array,
    t: number,
    cond: Float32Array,
    free: Float32Array = new Float32Array(this.info.width * this.info.height),
  ): Promise<Float32Array> {
    const { width: w, height: h } = this.info;
    const out = await this.session.run({
      x_t: new ort.Tensor('float32', x, [1, 4, h, w]),
      t: new ort.Tensor('float32', Float32Array.of(t), [1]),
      cond: new ort.Tensor('float32', cond, [1, COND_CHANNELS, h, w]),
      ...(this.takesFreeDepth ? { [FREE_DEPTH_INPUT]: new ort.Tensor('float32', free, [1, 1, h, w]) } : {}),
    });
    const v = out.velocity;
    if (v?.type !== 'float32') throw new Error('output "velocity" missing or not float32');
    return v.data as Float32Array;
  }

  async *generate(req: ClipRequest): AsyncGenerator<GeneratedFrame> {
    validateClipRequest(req, this.info);
    const k = req.intrinsics;
    const n = k.width * k.height;
    let preceding: ConditioningFrame[] = [...req.preceding];
    const cond = new Float32Array(COND_CHANNELS * n);
    for (let i = 0; i < req.poses.length; i++) {
      if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
      const t0 = performance.now();
      const pose = req.poses[i]!;
      // The references warped once: the conditioning shows them, the sample keeps them (knownFromMemory).
      const warpedReferences = warpFrames(req.references, pose, k);
      buildConditioning(pose, k, req.memoryViews[i]!, req.references, preceding, cond, warpedReferences);
      const free = new Float32Array(n);
      const known = req.memoryViews[i]!.freeDepth;
      if (known) for (let p = 0; p < n; p++) free[p] = Math.min(known[p]!, MAX_DEPTH_M) / MAX_DEPTH_M;
      const knownKept = knownFromMemory(req.memoryViews[i]!, n, pose, k, req.references, warpedReferences);
      const x = await eulerSample(
        gaussianNoise(4 * n, (req.seed + i * 0x9e3779b1) >>> 0),
        this.steps,
        (xt, t) => this.velocity(xt, t, cond, free),
        knownKept,
      );
      const rgb = new Uint8Array(n * 3);
      const depth = new Float32Array(n);
      for (let p = 0; p < n; p++) {
        for (let c = 0; c < 3; c++)
          rgb[p * 3 + c] = Math.round(Math.min(1, Math.max(0, (x[c * n + p]! + 1) / 2)) * 255);
        const d = ((x[3 * n + p]! + 1) / 2) * MAX_DEPTH_M;
        // An invented pixel's depth this near is the network's sky (D ≈ −1) plus noise: none; and
        // none at all from a network whose card says its invented depth is not worth fusing.
        const kept = knownKept.weight[3 * n + p] === 1;
        const nearest = kept ? 0.05 : this.inventedDepth ? MIN_INVENTED_DEPTH_M : Number.POSITIVE_INFINITY;
        depth[p] = d > nearest ? Math.min(d, MAX_DEPTH_M) : 0;
      }
      preceding = [{ pose, intrinsics: k, rgb, depth }];
      yield { index: i, rgb, depth, generateMs: performance.now() - t0 };
    }
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Whether onnxruntime-node's CUDA execution provider library sits beside its native binding (it
 * is installed separately: onnxruntime-node's install script with CUDA, or a GPU build).
 */
function cudaProviderInstalled(): boolean {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const bin = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    const name =
      process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return existsSync(join(bin, name));
  } catch {
    return false;
  }
}

/**
 * Invented pixels nearer than this get no depth. The network draws sky as depth 0 (D = −1) and its
 * noise lifts it to a few centimetres to metres from the eye: fused, those were the "fan of points
 * along the camera rays" a walk left in the memory. Kept pixels keep their depth.
 */
const MIN_INVENTED_DEPTH_M = 0.6;

/**
 * What the sample keeps (eulerSample's inpainting), in the network's value range (RGB and
 * depth / MAX_DEPTH_M mapped to [−1, 1]): the memory view where it covers the pixel; else what a
 * retrieved keyframe saw there, its surfaces warped into the target and its sky (a pixel without
 * depth whose ray points above the horizon) turned with the camera. Without the memory's pixels the
 * tiny network redrew them as a blur, the blur was fused, and a few steps into the game the whole
 * view and the memory were a blur too (issue 18). A keyframe's pixel without depth may also be one
 * a moving thing or an erased region took the depth from; above the horizon that is rare.
 */
function knownFromMemory(
  view: MemoryViewImage,
  n: number,
  pose: Pose,
  k: Intrinsics,
  references: readonly ConditioningFrame[],
  warped: WarpedFrames,
): KnownValues {
  const values = new Float32Array(4 * n);
  const weight = new Float32Array(4 * n);
  const keep = (p: number, rgb: Uint8Array, q: number, depthM: number) => {
    for (let c = 0; c < 3; c++) {
      values[c * n + p] = (rgb[q * 3 + c]! / 255) * 2 - 1;
      weight[c * n + p] = 1;
    }
    values[3 * n + p] = (Math.min(depthM, MAX_DEPTH_M) / MAX_DEPTH_M) * 2 - 1;
    weight[3 * n + p] = 1;
  };
  let uncovered = 0;
  for (let p = 0; p < n; p++) {
    if (view.coverage[p] === 1) keep(p, view.rgb, p, view.depth[p]!);
    else uncovered++;
  }
  if (uncovered === 0 || references.length === 0) return { values, weight };
  // What the retrieved keyframes saw is known too: their surfaces warped into the gaps (as the
  // procedural model does), and their sky, which lies at infinity and so moves with rotation only.
  for (let p = 0; p < n; p++) {
    if (view.coverage[p] === 1) continue;
    if (warped.known[p] === 1) {
      keep(p, warped.rgb, p, warped.depth[p]!);
      continue;
    }
    for (const ref of references) {
      const q = skyPixelSeenBy(ref, pose, k, p % k.width, Math.floor(p / k.width));
      if (q < 0) continue;
      keep(p, ref.rgb, q, 0);
      break;
    }
  }
  return { values, weight };
}

/** A ray is sky only this far above the horizon (sine of its elevation). */
const SKY_ABOVE_HORIZON = 0.02;

/**
 * The pixel of `ref` whose ray is target pixel (u, v)'s ray turned into its camera, when that pixel
 * shows sky (no depth, above the horizon): a direction at infinity is the same from any position.
 * −1 otherwise.
 */
function skyPixelSeenBy(ref: ConditioningFrame, pose: Pose, k: Intrinsics, u: number, v: number): number {
  if (!ref.depth) return -1;
  const a = pose.rotation;
  const b = ref.pose.rotation;
  const x = (u - k.cx) / k.fx;
  const y = (v - k.cy) / k.fy;
  // World direction, then into the reference camera (its rotation transposed).
  const wx = a[0] * x + a[1] * y + a[2];
  const wy = a[3] * x + a[4] * y + a[5];
  const wz = a[6] * x + a[7] * y + a[8];
  // Sky is above the horizon (world +y up); a pixel without depth below it is something else.
  if (!(wy > SKY_ABOVE_HORIZON * Math.hypot(wx, wy, wz))) return -1;
  const rz = b[2] * wx + b[5] * wy + b[8] * wz;
  if (!(rz > 1e-6)) return -1;
  const rk = ref.intrinsics;
  const ru = Math.round((rk.fx * (b[0] * wx + b[3] * wy + b[6] * wz)) / rz + rk.cx);
  const rv = Math.round((rk.fy * (b[1] * wx + b[4] * wy + b[7] * wz)) / rz + rk.cy);
  if (ru < 0 || rv < 0 || ru >= rk.width || rv >= rk.height) return -1;
  const q = rv * rk.width + ru;
  return ref.depth[q]! > 0 ? -1 : q;
}
