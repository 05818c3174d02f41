import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, validatePose } from '../../shared/camera/pose.ts';
import { check } from '../../shared/errors.ts';
import { type RgbdImage, validateRgbd } from '../../shared/image.ts';
import { SKETCH_SIZE, sketchIoU, type ViewSignature } from './visibility.ts';

/** A remembered frame: its camera, what it saw of the memory, and (optionally) its pixels. */
export interface Keyframe {
  readonly id: number;
  /** Camera-to-world, OpenCV axes. */
  readonly pose: Pose;
  readonly intrinsics: Intrinsics;
  readonly signature: ViewSignature;
  /** The frame's RGB-D; absent when only the signature is kept (e.g. evicted to storage). */
  readonly image?: RgbdImage;
}

export interface RetrieveOptions {
  /** How many keyframes at most (the paper's K; 0 returns none). */
  readonly k?: number;
  /** Minimum estimated 3D IoU (the paper's ε). */
  readonly minIoU?: number;
  /** Candidates taken from the inverted index before exact re-ranking by sketch IoU. */
  readonly candidates?: number;
}

export interface RetrievalHit {
  readonly keyframe: Keyframe;
  /** Estimated IoU of the visible voxel sets of the view and the keyframe. */
  readonly iou: number;
}

const DEFAULT_K = 7;
const DEFAULT_MIN_IOU = 0.1;
const DEFAULT_CANDIDATES = 32;

interface Posting {
  ids: Int32Array;
  weights: Float32Array;
  length: number;
}

/**
 * Keyframes with a two-stage 3D-overlap retrieval:
 * 1. an inverted index from memory chunk to the keyframes that see it scores every keyframe that
 *    shares a chunk with the view by histogram overlap Σ min(w_view, w_kf) — O(postings touched);
 * 2. the best `candidates` of those are re-ranked by the sketch estimate of voxel-set IoU, O(k)
 *    each, filtered by ε and cut to K.
 */
export class KeyframeStore {
  private readonly frames: Keyframe[] = [];
  private readonly postings = new Map<number, Posting>();
  private scores = new Float32Array(64);
  private nextId = 0;

  get size(): number {
    return this.frames.length;
  }

  all(): readonly Keyframe[] {
    return this.frames;
  }

  /** Adds a keyframe (validated); returns it with its id. O(cells in its signature). */
  add(input: Omit<Keyframe, 'id'> & { id?: number }): Keyframe {
    validatePose(input.pose, 'keyframe pose');
    validateIntrinsics(input.intrinsics);
    const sig = input.signature;
    check(
      sig.sketch instanceof Uint32Array &&
        sig.cells instanceof Float64Array &&
        sig.cellWeights instanceof Float32Array &&
        sig.cells.length === sig.cellWeights.length &&
        sig.sketch.length <= SKETCH_SIZE,
      'INVALID_ARGUMENT',
      'keyframe signature must have a Uint32Array sketch and matching cells/cellWeights',
    );
    if (input.image) {
      validateRgbd(input.image, 'keyframe image');
      check(
        input.image.width === input.intrinsics.width && input.image.height === input.intrinsics.height,
        'BUFFER_SIZE',
        'keyframe image size must match its intrinsics',
      );
    }
    const id = input.id ?? this.nextId;
    check(
      Number.isInteger(id) && id >= 0,
      'INVALID_ARGUMENT',
      `keyframe id must be a non-negative integer, got ${id}`,
    );
    this.nextId = Math.max(this.nextId, id + 1);
    const kf: Keyframe = { ...input, id };
    const index = this.frames.length;
    this.frames.push(kf);
    for (let c = 0; c < sig.cells.length; c++) {
      const key = sig.cells[c]!;
      let p = this.postings.get(key);
      if (!p) {
        p = { ids: new Int32Array(8), weights: new Float32Array(8), length: 0 };
        this.postings.set(key, p);
      }
      if (p.length === p.ids.length) {
        const ids = new Int32Array(p.length * 2);
        ids.set(p.ids);
        const weights = new Float32Array(p.length * 2);
        weights.set(p.weights);
        p.ids = ids;
        p.weights = weights;
      }
      p.ids[p.length] = index;
      p.weights[p.length] = sig.cellWeights[c]!;
      p.length++;
    }
    return kf;
  }

  /** The keyframes that overlap a view best, best first (see the class comment for the cost). */
  retrieve(view: ViewSignature, opts: RetrieveOptions = {}): RetrievalHit[] {
    const k = opts.k ?? DEFAULT_K;
    const minIoU = opts.minIoU ?? DEFAULT_MIN_IOU;
    const m = opts.candidates ?? DEFAULT_CANDIDATES;
    check(Number.isInteger(k) && k >= 0, 'INVALID_ARGUMENT', `K must be an integer ≥ 0, got ${k}`);
    check(
      Number.isFinite(minIoU) && minIoU >= 0 && minIoU <= 1,
      'INVALID_ARGUMENT',
      `ε must be in [0, 1], got ${minIoU}`,
    );
    check(Number.isInteger(m) && m >= 1, 'INVALID_ARGUMENT', `candidates must be an integer ≥ 1, got ${m}`);
    if (k === 0 || this.frames.length === 0) return [];
    if (this.scores.length < this.frames.length) this.scores = new Float32Array(this.frames.length * 2);
    const scores = this.scores;
    const touched: number[] = [];
    for (let c = 0; c < view.cells.length; c++) {
      const p = this.postings.get(view.cells[c]!);
      if (!p) continue;
      const wv = view.cellWeights[c]!;
      const { ids, weights } = p;
      for (let i = 0; i < p.length; i++) {
        const id = ids[i]!;
        if (scores[id] === 0) touched.push(id);
        const w = weights[i]!;
        scores[id]! += Math.min(w, wv);
      }
    }
    const candidates = touched.length > m ? topByScore(touched, scores, m) : touched;
    const hits: RetrievalHit[] = [];
    for (const id of candidates) {
      const kf = this.frames[id]!;
      const iou = sketchIoU(view.sketch, kf.signature.sketch);
      if (iou >= minIoU && iou > 0) hits.push({ keyframe: kf, iou });
    }
    for (const id of touched) scores[id] = 0;
    hits.sort((a, b) => b.iou - a.iou || a.keyframe.id - b.keyframe.id);
    return hits.slice(0, k);
  }
}

/** The m ids with the highest scores, in no particular order: a size-m min-heap, O(n log m). */
function topByScore(ids: readonly number[], scores: Float32Array, m: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number): boolean =>
    scores[a]! < scores[b]! || (scores[a] === scores[b] && a > b);
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let s = i;
      if (l < heap.length && less(heap[l]!, heap[s]!)) s = l;
      if (r < heap.length && less(heap[r]!, heap[s]!)) s = r;
      if (s === i) return;
      const t = heap[i]!;
      heap[i] = heap[s]!;
      heap[s] = t;
      i = s;
    }
  };
  for (const id of ids) {
    if (heap.length < m) {
      heap.push(id);
      let i = heap.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!less(heap[i]!, heap[parent]!)) break;
        const t = heap[i]!;
        heap[i] = heap[parent]!;
        heap[parent] = t;
        i = parent;
      }
    } else if (less(heap[0]!, id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap;
}
