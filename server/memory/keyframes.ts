import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { validateIntrinsics } from '../../shared/camera/intrinsics.ts';
import { type Pose, validatePose } from '../../shared/camera/pose.ts';
import { check } from '../../shared/errors.ts';
import { type RgbdImage, validateRgbd } from '../../shared/image.ts';
import { SKETCH_SIZE, sketchIoU, type ViewSignature } from './visibility.ts';

/**
 * A remembered frame: its camera, what it saw of the memory, and (optionally) its pixels. Keyframes
 * a `KeyframeStore` returns read `image` through it: an image that left RAM (see
 * `KeyframeStore.useImageStore`) comes back, byte for byte, when it is read.
 */
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

/**
 * Where the images of persisted keyframes can leave RAM to: the store keeps every keyframe's pose
 * and signature (all retrieval needs) and at most `budgetBytes` of images, least recently used
 * first out; only keyframes marked persisted may lose their image. Set by the world store (I/O
 * stays outside the memory); without one every image stays in RAM.
 */
export interface KeyframeImageStore {
  /** Bytes of keyframe images (RGB + depth) kept in RAM at most, once persisted. */
  readonly budgetBytes: number;
  /** The image of a persisted keyframe, exactly as it was added. Throws when it cannot. */
  load(id: number): RgbdImage;
}

interface Entry {
  readonly id: number;
  readonly hasImage: boolean;
  persisted: boolean;
}

const imageBytesOf = (im: RgbdImage): number => im.rgb.byteLength + im.depth.byteLength;

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
  private readonly entries: Entry[] = [];
  /** Images in RAM by keyframe index, least recently used first. */
  private readonly images = new Map<number, RgbdImage>();
  private residentBytes = 0;
  private imageStore: KeyframeImageStore | undefined;
  private readonly byId = new Map<number, number>();
  private readonly postings = new Map<number, Posting>();
  private scores = new Float32Array(64);
  private nextId = 0;

  /** Lets images of persisted keyframes leave RAM beyond `store.budgetBytes` (see `KeyframeImageStore`). */
  useImageStore(store: KeyframeImageStore): void {
    check(
      store.budgetBytes >= 0,
      'INVALID_ARGUMENT',
      `keyframe image budget must be ≥ 0 bytes, got ${store.budgetBytes}`,
    );
    this.imageStore = store;
    this.enforceBudget(-1);
  }

  get hasImageStore(): boolean {
    return this.imageStore !== undefined;
  }

  /** Marks a keyframe durably stored: its image may now leave RAM (and will come back from the store). */
  markPersisted(id: number): void {
    const index = this.byId.get(id);
    if (index === undefined) return;
    this.entries[index]!.persisted = true;
    this.enforceBudget(-1);
  }

  /** Bytes of keyframe images held in RAM. */
  get imageBytes(): number {
    return this.residentBytes;
  }

  /** How many keyframe images are in RAM. */
  get residentImages(): number {
    return this.images.size;
  }

  /** The image of the keyframe at `index`: from RAM (marked recently used) or loaded back. */
  private imageAt(index: number): RgbdImage | undefined {
    const e = this.entries[index]!;
    if (!e.hasImage) return undefined;
    const inRam = this.images.get(index);
    if (inRam) {
      this.images.delete(index);
      this.images.set(index, inRam);
      return inRam;
    }
    const kf = this.frames[index]!;
    const image = this.imageStore!.load(e.id);
    check(
      image.width === kf.intrinsics.width &&
        image.height === kf.intrinsics.height &&
        image.rgb.length === image.width * image.height * 3 &&
        image.depth.length === image.width * image.height,
      'BUFFER_SIZE',
      `keyframe ${e.id}: the image loaded back does not match its intrinsics`,
    );
    this.images.set(index, image);
    this.residentBytes += imageBytesOf(image);
    this.enforceBudget(index);
    return image;
  }

  /** Drops least recently used images of persisted keyframes until within budget; `keep` stays. */
  private enforceBudget(keep: number): void {
    const budget = this.imageStore?.budgetBytes;
    if (budget === undefined || this.residentBytes <= budget) return;
    for (const [index, image] of this.images) {
      if (this.residentBytes <= budget) return;
      if (index === keep || !this.entries[index]!.persisted) continue;
      this.images.delete(index);
      this.residentBytes -= imageBytesOf(image);
    }
  }

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
    check(!this.byId.has(id), 'INVALID_ARGUMENT', `keyframe ${id} is already in the store`);
    const index = this.frames.length;
    const image = input.image;
    // The image is read through the store, which may let it leave RAM and bring it back. By id:
    // `evict` renumbers the keyframes that stay.
    const imageOf = (): RgbdImage | undefined => {
      const at = this.byId.get(id);
      return at === undefined ? undefined : this.imageAt(at);
    };
    const kf: Keyframe = {
      id,
      pose: input.pose,
      intrinsics: input.intrinsics,
      signature: sig,
      get image(): RgbdImage | undefined {
        return imageOf();
      },
    };
    this.frames.push(kf);
    this.entries.push({ id, hasImage: image !== undefined, persisted: false });
    this.byId.set(id, index);
    if (image) {
      this.images.set(index, image);
      this.residentBytes += imageBytesOf(image);
    }
    this.index(index);
    return kf;
  }

  /** New keyframes get ids from `nextId` on (ids of keyframes that are not in RAM stay taken). */
  reserveIdsBelow(nextId: number): void {
    check(
      Number.isInteger(nextId) && nextId >= 0,
      'INVALID_ARGUMENT',
      `next keyframe id must be an integer ≥ 0, got ${nextId}`,
    );
    this.nextId = Math.max(this.nextId, nextId);
  }

  /** Whether the keyframe with this id is in RAM. */
  has(id: number): boolean {
    return this.byId.has(id);
  }

  /**
   * Lets persisted keyframes for which `leave` is true leave RAM: pose, signature, image and index
   * entries (the world store brings them back near a player). Keyframes not persisted yet stay.
   * Returns the ids of those that left. O(keyframes + their signatures' cells): the index is rebuilt.
   */
  evict(leave: (kf: Keyframe) => boolean): number[] {
    const frames = [...this.frames];
    const entries = [...this.entries];
    const images = new Map<number, RgbdImage>();
    const kept: number[] = [];
    for (let i = 0; i < frames.length; i++) if (!entries[i]!.persisted || !leave(frames[i]!)) kept.push(i);
    if (kept.length === frames.length) return [];
    const keptSet = new Set(kept);
    const left = entries.filter((_e, i) => !keptSet.has(i)).map((e) => e.id);
    const newIndex = new Map<number, number>(kept.map((old, i) => [old, i]));
    // Keep the images' least-recently-used order.
    for (const [old, image] of this.images) {
      const i = newIndex.get(old);
      if (i !== undefined) images.set(i, image);
      else this.residentBytes -= imageBytesOf(image);
    }
    this.frames.length = 0;
    this.entries.length = 0;
    this.byId.clear();
    this.postings.clear();
    this.images.clear();
    for (const old of kept) {
      const i = this.frames.length;
      this.frames.push(frames[old]!);
      this.entries.push(entries[old]!);
      this.byId.set(entries[old]!.id, i);
      this.index(i);
    }
    for (const [i, image] of images) this.images.set(i, image);
    return left;
  }

  /** Adds the keyframe at `index` to the inverted index. */
  private index(index: number): void {
    const sig = this.frames[index]!.signature;
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
