import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { intrinsicsFromFov, validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, validatePose } from '../../shared/camera/pose.ts';
import { check } from '../../shared/errors.ts';
import { MAX_PROMPT_LENGTH } from '../../shared/protocol/events.ts';

/**
 * The world-model contract (docs/model-contract.md). A model describes
 * itself and turns a clip request into frames, one by one, as they are ready. It keeps no world of
 * its own between calls: everything it should stay consistent with arrives in the request.
 */
export interface WorldModelInfo {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** Frames per second of generated video (sets the time between target poses). */
  readonly fps: number;
  readonly framesPerClip: number;
  readonly outputsDepth: boolean;
  readonly outputsDynamicMask: boolean;
  /** Where it runs, e.g. "cpu", "cuda:0", "remote:worker-3". */
  readonly device: string;
}

/** The memory rendered at one target pose (see server/memory/renderView.ts). */
export interface MemoryViewImage {
  readonly rgb: Uint8Array;
  /** Camera z, metres; 0 where not covered. */
  readonly depth: Float32Array;
  /** 1 where the memory covers the pixel. */
  readonly coverage: Uint8Array;
  /**
   * Camera z, metres, up to which the memory knows the pixel's ray to cross empty space (0: not
   * known; never beyond the pixel's surface). A model invents nothing nearer than this: space the
   * world has shown empty stays empty. Absent: nothing is known to be empty.
   */
  readonly freeDepth?: Float32Array;
}

/** A retrieved reference keyframe or a preceding frame: pixels plus the camera that saw them. */
export interface ConditioningFrame {
  readonly pose: Pose;
  readonly intrinsics: Intrinsics;
  readonly rgb: Uint8Array;
  readonly depth?: Float32Array;
}

export interface ClipRequest {
  readonly clipId: number;
  /** Target cameras, one per frame (camera-to-world, OpenCV axes), 1/fps apart. */
  readonly poses: readonly Pose[];
  readonly intrinsics: Intrinsics;
  /** The memory rendered at each target pose (same length as `poses`). */
  readonly memoryViews: readonly MemoryViewImage[];
  /** Up to K reference keyframes retrieved by 3D overlap, best first. */
  readonly references: readonly ConditioningFrame[];
  /** The last frames before this clip (oldest first); empty for the first clip. */
  readonly preceding: readonly ConditioningFrame[];
  readonly prompt: string;
  /** 32-bit unsigned seed: the same request and seed give the same frames. */
  readonly seed: number;
  /**
   * The world's own seed (uint32; default 0): what a model invents for a place may depend on it and
   * on the place, not on the clip, so that a place half seen in one clip is completed alike in the
   * next and two worlds with one prompt still differ.
   */
  readonly worldSeed?: number;
  /** World time of the first frame, seconds (moves dynamic content). */
  readonly timeS: number;
  readonly signal?: AbortSignal;
}

export interface GeneratedFrame {
  /** Index within the clip, 0-based. */
  readonly index: number;
  readonly rgb: Uint8Array;
  /** Camera z, metres (0 = unknown), when the model outputs depth. */
  readonly depth?: Float32Array;
  /** 1 on moving things, when the model outputs a dynamic mask. */
  readonly dynamicMask?: Uint8Array;
  /** Milliseconds the model spent on this frame. */
  readonly generateMs: number;
}

export interface WorldModel {
  describe(): WorldModelInfo;
  /** Frames of the clip in order; stops early (throwing an AbortError) when `signal` aborts. */
  generate(request: ClipRequest): AsyncIterable<GeneratedFrame>;
  dispose(): Promise<void>;
}

/** Horizontal field of view of every model's camera, degrees (principal point at the centre). */
export const MODEL_FOV_DEG = 75;

/** The frame size and timing every built-in model uses unless told otherwise. */
export const MODEL_DEFAULTS = { width: 512, height: 288, fps: 30, framesPerClip: 16 } as const;

/** The camera of a model of this size (default: the built-in size): 75° wide, centred principal point. */
export function modelIntrinsics(
  width: number = MODEL_DEFAULTS.width,
  height: number = MODEL_DEFAULTS.height,
): Intrinsics {
  return intrinsicsFromFov(width, height, MODEL_FOV_DEG);
}

/** Size and timing of a model's output; unset fields take the contract's defaults. */
export interface ModelFrameOptions {
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  readonly framesPerClip?: number;
}

/** The description and camera of a CPU model that outputs depth and a dynamic mask (unset fields: `MODEL_DEFAULTS`). */
export function describeCpuModel(
  name: string,
  opts: ModelFrameOptions,
): { info: WorldModelInfo; intrinsics: Intrinsics } {
  const width = opts.width ?? MODEL_DEFAULTS.width;
  const height = opts.height ?? MODEL_DEFAULTS.height;
  return {
    intrinsics: modelIntrinsics(width, height),
    info: {
      name,
      width,
      height,
      fps: opts.fps ?? MODEL_DEFAULTS.fps,
      framesPerClip: opts.framesPerClip ?? MODEL_DEFAULTS.framesPerClip,
      outputsDepth: true,
      outputsDynamicMask: true,
      device: 'cpu',
    },
  };
}

/** Throws a coded error unless the request is well-formed for a model with this description. */
export function validateClipRequest(req: ClipRequest, info: WorldModelInfo): void {
  check(
    Number.isInteger(req.clipId) && req.clipId >= 0,
    'INVALID_ARGUMENT',
    `clipId must be an integer ≥ 0, got ${req.clipId}`,
  );
  check(
    Array.isArray(req.poses) && req.poses.length >= 1 && req.poses.length <= info.framesPerClip,
    'INVALID_ARGUMENT',
    `a clip needs 1..${info.framesPerClip} poses, got ${req.poses?.length}`,
  );
  req.poses.forEach((p, i) => {
    validatePose(p, `pose ${i}`);
  });
  validateIntrinsics(req.intrinsics);
  check(
    req.intrinsics.width === info.width && req.intrinsics.height === info.height,
    'BUFFER_SIZE',
    `model ${info.name} generates ${info.width}×${info.height}, the request asks for ${req.intrinsics.width}×${req.intrinsics.height}`,
  );
  const n = info.width * info.height;
  check(
    req.memoryViews.length === req.poses.length,
    'INVALID_ARGUMENT',
    `memoryViews must match poses (${req.poses.length}), got ${req.memoryViews.length}`,
  );
  req.memoryViews.forEach((v, i) => {
    check(
      v.rgb instanceof Uint8Array &&
        v.rgb.length === n * 3 &&
        v.depth instanceof Float32Array &&
        v.depth.length === n &&
        v.coverage instanceof Uint8Array &&
        v.coverage.length === n &&
        (v.freeDepth === undefined || (v.freeDepth instanceof Float32Array && v.freeDepth.length === n)),
      'BUFFER_SIZE',
      `memory view ${i} does not match ${info.width}×${info.height}`,
    );
  });
  for (const [what, frames] of [
    ['reference', req.references],
    ['preceding frame', req.preceding],
  ] as const) {
    frames.forEach((f, i) => {
      validatePose(f.pose, `${what} ${i} pose`);
      validateIntrinsics(f.intrinsics);
      const m = f.intrinsics.width * f.intrinsics.height;
      check(
        f.rgb instanceof Uint8Array &&
          f.rgb.length === m * 3 &&
          (f.depth === undefined || (f.depth instanceof Float32Array && f.depth.length === m)),
        'BUFFER_SIZE',
        `${what} ${i} buffers do not match its intrinsics`,
      );
    });
  }
  check(
    typeof req.prompt === 'string' && req.prompt.length <= MAX_PROMPT_LENGTH,
    'INVALID_ARGUMENT',
    `prompt must be a string of at most ${MAX_PROMPT_LENGTH} characters`,
  );
  check(
    Number.isInteger(req.seed) && req.seed >= 0 && req.seed <= 0xffffffff,
    'INVALID_ARGUMENT',
    `seed must be a uint32, got ${req.seed}`,
  );
  check(
    req.worldSeed === undefined ||
      (Number.isInteger(req.worldSeed) && req.worldSeed >= 0 && req.worldSeed <= 0xffffffff),
    'INVALID_ARGUMENT',
    `worldSeed must be a uint32, got ${req.worldSeed}`,
  );
  check(Number.isFinite(req.timeS), 'INVALID_ARGUMENT', `timeS must be finite, got ${req.timeS}`);
}
