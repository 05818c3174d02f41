import {
  type CameraState,
  type ControllerConfig,
  DEFAULT_CONTROLLER,
  type InputState,
  poseOfCamera,
  stepCamera,
} from '../../shared/camera/controller.ts';
import { type Intrinsics, intrinsicsFromFov } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { check } from '../../shared/errors.ts';
import type { RgbdImage } from '../../shared/image.ts';
import { maskCarvedDepth } from '../memory/carvedSpace.ts';
import type { RetrievalHit } from '../memory/keyframes.ts';
import type { MemoryView } from '../memory/renderView.ts';
import type { SpatialMemory } from '../memory/spatialMemory.ts';
import { type ViewSignature, viewSignature } from '../memory/visibility.ts';
import { FUSE_MAX_DEPTH_M } from '../memory/voxelGrid.ts';
import {
  type ConditioningFrame,
  type GeneratedFrame,
  type MemoryViewImage,
  MODEL_FOV_DEG,
  type WorldModel,
} from '../models/worldModel.ts';

export interface DirectorOptions {
  /** Condition on and update the spatial memory (off = the plain video-model baseline). */
  readonly memory?: boolean;
  /** Reference keyframes per clip (the paper's K). */
  readonly k?: number;
  /** Minimum 3D IoU for a reference (the paper's ε). */
  readonly minIoU?: number;
  /** A generated frame becomes a keyframe when no keyframe overlaps it by more than this. */
  readonly keyframeMaxIoU?: number;
  /** Consider a new keyframe at most once per this many generated frames (short clips would otherwise keep one per clip). */
  readonly keyframeEvery?: number;
  /** Fuse every n-th generated frame (consecutive frames overlap almost entirely). */
  readonly fuseEvery?: number;
  readonly prompt?: string;
  /** The world's seed, passed to the model with every clip (ClipRequest.worldSeed; default 0). */
  readonly worldSeed?: number;
  /** Frames kept as `preceding` for the next clip. */
  readonly precedingFrames?: number;
  /**
   * Which generated pixels are kept out of the memory: `model` uses the model's dynamic mask (and
   * falls back to contradictions when it has none), `contradictions` ignores the model's mask,
   * `none` fuses everything (only for measuring leakage).
   */
  readonly dynamicMasking?: DynamicMasking;
  /** Renders a clip's memory views (view threads); absent: `memory.render` in this thread. */
  readonly views?: ViewRenderer;
}

/** Renders memory views at several poses, the same bytes `memory.render(pose, k)` gives. */
export interface ViewRenderer {
  render(memory: SpatialMemory, poses: readonly Pose[], k: Intrinsics): Promise<MemoryView[]>;
}

export type DynamicMasking = 'model' | 'contradictions' | 'none';

/** Milliseconds per stage for one frame; condition and the per-clip work are shared out per frame. */
interface StageTimings {
  readonly conditionMs: number;
  readonly generateMs: number;
  readonly updateMs: number;
}

export interface DirectedFrame extends GeneratedFrame {
  readonly clipId: number;
  readonly pose: Pose;
  readonly timings: StageTimings;
  /** Pixels not fused because they would put a surface inside known free space (0: not fused). */
  readonly freeSpaceRejected: number;
}

export interface ClipOptions {
  readonly seed: number;
  readonly timeS: number;
  readonly signal?: AbortSignal;
}

/** Signatures are computed at a quarter of the model's resolution: retrieval needs coverage, not detail. */
const SIGNATURE_SCALE = 4;

/**
 * Where the stages meet: plans the next clip's poses along the player's path, renders
 * the memory at each target pose, retrieves up to K reference keyframes by 3D overlap, runs the
 * model, and fuses every generated frame's static pixels back into the memory, keeping new
 * keyframes where overlap with the existing ones is low. One director per player; the memory
 * may be shared by several.
 */
export class Director {
  private readonly opts: Required<Omit<DirectorOptions, 'prompt' | 'views'>> & { prompt: string };
  private readonly views: ViewRenderer | undefined;
  private clipCounter = 0;
  private framesSinceKeyframeCheck = 0;
  private freeSpaceRejectedTotal = 0;
  private quarterCache: { pose: Pose; revision: number; view: MemoryView } | undefined;
  private preceding: ConditioningFrame[] = [];
  private readonly k: Intrinsics;
  private readonly sigK: Intrinsics;

  constructor(
    readonly memory: SpatialMemory,
    readonly model: WorldModel,
    opts: DirectorOptions = {},
  ) {
    this.opts = {
      memory: opts.memory ?? true,
      k: opts.k ?? 7,
      minIoU: opts.minIoU ?? 0.1,
      keyframeMaxIoU: opts.keyframeMaxIoU ?? 0.5,
      fuseEvery: opts.fuseEvery ?? 1,
      keyframeEvery: opts.keyframeEvery ?? 16,
      prompt: opts.prompt ?? '',
      worldSeed: opts.worldSeed ?? 0,
      precedingFrames: opts.precedingFrames ?? 2,
      dynamicMasking: opts.dynamicMasking ?? 'model',
    };
    this.views = opts.views;
    check(
      Number.isInteger(this.opts.k) && this.opts.k >= 0,
      'INVALID_ARGUMENT',
      `K must be an integer ≥ 0, got ${this.opts.k}`,
    );
    check(
      this.opts.minIoU >= 0 && this.opts.minIoU <= 1,
      'INVALID_ARGUMENT',
      `ε must be in [0, 1], got ${this.opts.minIoU}`,
    );
    check(
      Number.isInteger(this.opts.worldSeed) && this.opts.worldSeed >= 0 && this.opts.worldSeed <= 0xffffffff,
      'INVALID_ARGUMENT',
      `worldSeed must be a uint32, got ${this.opts.worldSeed}`,
    );
    check(
      Number.isInteger(this.opts.fuseEvery) && this.opts.fuseEvery >= 1,
      'INVALID_ARGUMENT',
      'fuseEvery must be an integer ≥ 1',
    );
    const info = model.describe();
    this.k = intrinsicsFromFov(info.width, info.height, MODEL_FOV_DEG);
    this.sigK = intrinsicsFromFov(
      Math.max(8, Math.round(info.width / SIGNATURE_SCALE)),
      Math.max(8, Math.round(info.height / SIGNATURE_SCALE)),
      MODEL_FOV_DEG,
    );
  }

  /** The camera the model renders with (75° horizontal field of view at the model's size). */
  get intrinsics(): Intrinsics {
    return this.k;
  }

  set prompt(prompt: string) {
    this.opts.prompt = prompt;
  }

  /**
   * The next clip's target poses: the shared camera controller stepped forward with the player's
   * current input held, one pose per model frame (1/fps apart), `frames` of them (default: the
   * model's clip length). Deterministic.
   */
  planClip(
    state: CameraState,
    input: InputState,
    cfg: ControllerConfig = DEFAULT_CONTROLLER,
    frames: number = this.model.describe().framesPerClip,
  ): { poses: Pose[]; end: CameraState } {
    const info = this.model.describe();
    const poses: Pose[] = [];
    let s = state;
    for (let i = 0; i < frames; i++) {
      s = stepCamera(
        s,
        { ...input, lookDxPx: i === 0 ? input.lookDxPx : 0, lookDyPx: i === 0 ? input.lookDyPx : 0 },
        1 / info.fps,
        cfg,
      );
      poses.push(poseOfCamera(s));
    }
    return { poses, end: s };
  }

  /**
   * Starts the world from a known frame (the paper's initial image, or an imported RGB-D image):
   * it is fused into the memory and kept as a keyframe (memory on), and it is the preceding frame
   * of the first clip either way. Pixels flagged in `dynamicMask` are not fused.
   */
  seedFrame(image: RgbdImage, pose: Pose, dynamicMask?: Uint8Array): void {
    check(
      image.width === this.k.width && image.height === this.k.height,
      'BUFFER_SIZE',
      `the seed frame must be ${this.k.width}×${this.k.height}, got ${image.width}×${image.height}`,
    );
    // Moving pixels keep no depth in what later clips reproject (the keyframe, the preceding frame):
    // reprojected, they would come back as static surfaces where the thing once stood.
    const depth = dynamicMask ? image.depth.map((d, p) => (dynamicMask[p] ? 0 : d)) : image.depth;
    if (this.opts.memory) {
      this.memory.fuse(image, pose, this.k, { excludeMask: dynamicMask });
      // Its signature from the view retrieval queries with (SIGNATURE_SCALE): a full-resolution
      // signature sees more cells than a query ever does, and at 128×72 the seed keyframe scored an
      // IoU of 0.07 from its own pose, under minIoU, so the ONNX model never had a reference.
      this.memory.addKeyframe({ ...image, depth }, pose, this.k, this.quarterView(pose));
    }
    this.preceding = [{ pose, intrinsics: this.k, rgb: image.rgb, depth }];
  }

  /** Runs one clip over `poses`, yielding each frame after its memory update. */
  async *runClip(poses: readonly Pose[], clip: ClipOptions): AsyncGenerator<DirectedFrame> {
    const clipId = this.clipCounter++;
    const { memory: useMemory, fuseEvery } = this.opts;
    const k = this.k;
    const n = k.width * k.height;

    // Condition: memory views for every target pose, references for the clip.
    let t0 = performance.now();
    const views: (MemoryView | undefined)[] = !useMemory
      ? poses.map(() => undefined)
      : this.views
        ? await this.views.render(this.memory, poses, k)
        : poses.map((p) => this.memory.render(p, k));
    const memoryViews: MemoryViewImage[] = views.map(
      (v) => v ?? { rgb: new Uint8Array(n * 3), depth: new Float32Array(n), coverage: new Uint8Array(n) },
    );
    const references = useMemory ? this.retrieveForClip(poses) : [];
    const conditionMs = (performance.now() - t0) / poses.length;

    const generated = this.model.generate({
      clipId,
      poses,
      intrinsics: k,
      memoryViews,
      references: references.map((h) => this.withoutErased(toConditioning(h.keyframe))),
      preceding: this.preceding.map((f) => this.withoutErased(f)),
      prompt: this.opts.prompt,
      seed: clip.seed >>> 0,
      worldSeed: this.opts.worldSeed,
      timeS: clip.timeS,
      signal: clip.signal,
    });
    const last: ConditioningFrame[] = [];
    for await (const frame of generated) {
      const pose = poses[frame.index]!;
      t0 = performance.now();
      const freeSpaceRejected =
        useMemory && frame.index % fuseEvery === 0 ? this.update(frame, pose, views[frame.index]!) : 0;
      this.freeSpaceRejectedTotal += freeSpaceRejected;
      last.push({ pose, intrinsics: k, rgb: frame.rgb, depth: precedingDepth(frame, views[frame.index]) });
      const updateMs = performance.now() - t0;
      yield {
        ...frame,
        clipId,
        pose,
        timings: { conditionMs, generateMs: frame.generateMs, updateMs },
        freeSpaceRejected,
      };
    }
    this.preceding = last.slice(-this.opts.precedingFrames);
    // Keyframes: the clip's last frame when nothing remembered overlaps it much.
    this.framesSinceKeyframeCheck += last.length;
    const end = last.at(-1);
    if (useMemory && end && this.framesSinceKeyframeCheck >= this.opts.keyframeEvery) {
      this.framesSinceKeyframeCheck = 0;
      this.considerKeyframe(end);
    }
  }

  /**
   * A conditioning frame from before an erase loses its depth where it shows erased space, so the
   * model does not warp what was erased back into view.
   */
  private withoutErased(f: ConditioningFrame): ConditioningFrame {
    if (!f.depth) return f;
    const depth = maskCarvedDepth(this.memory.grid, f.depth, f.pose, f.intrinsics, FUSE_MAX_DEPTH_M);
    return depth ? { ...f, depth } : f;
  }

  /** The union of the best references for the clip's first, middle and last poses, top K by IoU. */
  private retrieveForClip(poses: readonly Pose[]): RetrievalHit[] {
    if (this.opts.k === 0 || this.memory.keyframes.size === 0) return [];
    // First, middle and last pose; a short clip has fewer distinct ones (a 1-frame clip has one).
    const picks = [...new Set([0, poses.length >> 1, poses.length - 1])].map((i) => poses[i]!);
    const best = new Map<number, RetrievalHit>();
    for (const p of picks) {
      const sig = this.signatureAt(p);
      for (const hit of this.memory.keyframes.retrieve(sig, { k: this.opts.k, minIoU: this.opts.minIoU })) {
        const prev = best.get(hit.keyframe.id);
        if (!prev || prev.iou < hit.iou) best.set(hit.keyframe.id, hit);
      }
    }
    return [...best.values()]
      .sort((a, b) => b.iou - a.iou || a.keyframe.id - b.keyframe.id)
      .slice(0, this.opts.k);
  }

  /** Share of the view at `pose` the memory covers (quarter resolution): below 1, a clip there invents. */
  coverageAt(pose: Pose): number {
    const v = this.quarterView(pose);
    let c = 0;
    for (let p = 0; p < v.coverage.length; p++) c += v.coverage[p]!;
    return c / v.coverage.length;
  }

  private signatureAt(pose: Pose): ViewSignature {
    return viewSignature(this.quarterView(pose));
  }

  /** The memory at quarter resolution from `pose`; reused while the pose object and the memory are unchanged. */
  private quarterView(pose: Pose): MemoryView {
    const c = this.quarterCache;
    const revision = this.memory.revision;
    if (c && c.pose === pose && c.revision === revision) return c.view;
    const view = this.memory.render(pose, this.sigK, { freeSpace: false });
    this.quarterCache = { pose, revision, view };
    return view;
  }

  /**
   * Fuses a generated frame's static pixels. Without a model mask, contradictions of confident
   * memory count as dynamic. Surfaces inside known free space are not fused; returns how many.
   */
  private update(frame: GeneratedFrame, pose: Pose, view: MemoryView): number {
    const k = this.k;
    const depth = frame.depth ?? view.depth; // no model depth: refresh colours where the memory knows the depth
    const masking = this.opts.dynamicMasking;
    const dynamic =
      masking === 'none'
        ? undefined
        : masking === 'model' && frame.dynamicMask
          ? frame.dynamicMask
          : this.memory.contradictions(depth, view);
    const exclude = withUnchanged(dynamic, frame.rgb, depth, view, this.memory.voxelSizeM);
    const violations = this.memory.freeSpaceViolations(depth, view, pose, k);
    let rejected = 0;
    for (let p = 0; p < exclude.length; p++)
      if (violations[p] === 1 && exclude[p] === 0) {
        exclude[p] = 1;
        rejected++;
      }
    this.memory.fuse({ width: k.width, height: k.height, rgb: frame.rgb, depth }, pose, k, {
      excludeMask: exclude,
    });
    return rejected;
  }

  /** Generated pixels kept out of the memory so far because they contradicted known free space. */
  get freeSpaceRejected(): number {
    return this.freeSpaceRejectedTotal;
  }

  private considerKeyframe(frame: ConditioningFrame): void {
    const sig = this.signatureAt(frame.pose);
    if (sig.sketch.length === 0) return;
    const best = this.memory.keyframes.retrieve(sig, { k: 1, minIoU: 0 })[0];
    if (!best || best.iou < this.opts.keyframeMaxIoU) {
      const image = frame.depth
        ? { width: this.k.width, height: this.k.height, rgb: frame.rgb, depth: frame.depth }
        : undefined;
      this.memory.keyframes.add({ pose: frame.pose, intrinsics: this.k, signature: sig, image });
    }
  }
}

/**
 * The depth a frame hands on as a preceding frame: unknown (0) where it moved, and where its
 * memory view covered it. Moving pixels must not be carried into the next clip; covered ones are in
 * the memory already (a model repeats them), and reprojected from the frame they came back with the
 * memory view's one depth per splat (a floor some centimetres high) and its silhouettes spread over
 * the sky, which were then fused as new surfaces (measured on the turn-back walks: the courtyard
 * 25.6 → 33.6 dB, the hall's floor no longer 2–3 cm above the floor).
 */
function precedingDepth(frame: GeneratedFrame, view: MemoryView | undefined): Float32Array | undefined {
  if (!frame.depth || (!frame.dynamicMask && !view)) return frame.depth;
  const depth = frame.depth.slice();
  const moving = frame.dynamicMask;
  const covered = view?.coverage;
  for (let p = 0; p < depth.length; p++) if (moving?.[p] || covered?.[p]) depth[p] = 0;
  return depth;
}

function toConditioning(kf: {
  pose: Pose;
  intrinsics: Intrinsics;
  image?: { rgb: Uint8Array; depth: Float32Array };
}): ConditioningFrame {
  return {
    pose: kf.pose,
    intrinsics: kf.intrinsics,
    rgb: kf.image?.rgb ?? new Uint8Array(kf.intrinsics.width * kf.intrinsics.height * 3),
    depth: kf.image?.depth,
  };
}

/** Summed |ΔR|+|ΔG|+|ΔB| below which a generated pixel counts as the memory's own colour. */
const UNCHANGED_RGB = 24;

/**
 * `dynamic` plus the pixels where the frame only repeats what the memory already holds (same
 * surface, same colour). Fusing those again adds nothing but blur: the memory's splat rendering
 * re-fused frame after frame diffuses colours into neighbouring voxels. Only what is new or
 * changed is written.
 */
function withUnchanged(
  dynamic: Uint8Array | undefined,
  rgb: Uint8Array,
  depth: Float32Array,
  view: MemoryView,
  voxelSizeM: number,
): Uint8Array {
  const n = depth.length;
  const mask = dynamic ? dynamic.slice() : new Uint8Array(n);
  const cov = view.coverage;
  const vd = view.depth;
  const vr = view.rgb;
  for (let p = 0; p < n; p++) {
    if (mask[p] || cov[p] === 0) continue;
    const dm = vd[p]!;
    if (Math.abs(depth[p]! - dm) > Math.max(2 * voxelSizeM, 0.02 * dm)) continue;
    const o = p * 3;
    const diff =
      Math.abs(rgb[o]! - vr[o]!) + Math.abs(rgb[o + 1]! - vr[o + 1]!) + Math.abs(rgb[o + 2]! - vr[o + 2]!);
    if (diff < UNCHANGED_RGB) mask[p] = 1;
  }
  return mask;
}
