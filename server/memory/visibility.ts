import type { MemoryView } from './renderView.ts';
import { KEY, STRIDE, type VoxelChunk } from './voxelChunk.ts';

/**
 * What a view sees of the memory, compactly: enough to compare two views' visible voxel sets
 * (3D IoU, measured on 4×4×4-voxel retrieval cells) without keeping either set.
 * - `sketch`: bottom-k MinHash of the visible cells' stable hashes (ascending). The Jaccard index
 *   of two sketches estimates the IoU of the full sets with standard error ≈ 1/√k.
 * - `cells`/`cellWeights`: the chunks in view with the fraction of covered pixels in each: a coarse
 *   histogram for the inverted index that finds candidates quickly.
 */
export interface ViewSignature {
  readonly sketch: Uint32Array;
  /** Estimated number of distinct visible retrieval cells (exact when below the sketch size). */
  readonly voxelCount: number;
  readonly cells: Float64Array;
  readonly cellWeights: Float32Array;
}

/** Sketch size: IoU estimates with ≈ 4.4% standard error (measured: 99.4% of the best achievable IoU retrieved). */
export const SKETCH_SIZE = 512;

/**
 * Visibility is measured on retrieval cells of 4×4×4 voxels: the same cells whether a chunk was
 * drawn voxel by voxel or from a coarser level of detail (≤ 4 voxels per cell edge), so a view's
 * signature does not depend on how far away it was rendered from.
 */
const CELL_SHIFT = 2;

/** Retrieval cell (within its chunk) of a voxel's local key (lx << 10 | ly << 5 | lz). */
function cellOf(localKey: number): number {
  return (
    (((localKey >> (10 + CELL_SHIFT)) & 7) << 6) |
    (((localKey >> (5 + CELL_SHIFT)) & 7) << 3) |
    ((localKey >> CELL_SHIFT) & 7)
  );
}

/** Stable 32-bit hash of a chunk's coordinates (not its slot or load order). */
function chunkSeed(c: VoxelChunk): number {
  let h = Math.imul(c.cx, 0x9e3779b1) ^ Math.imul(c.cy, 0x85ebca77) ^ Math.imul(c.cz, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return h ^ (h >>> 15);
}
/** Stable 32-bit hash of a retrieval cell: its chunk's seed and the cell of a voxel's local key. */
function voxelHash(seed: number, localKey: number): number {
  let h = seed ^ Math.imul(cellOf(localKey) + 0x632be5ab, 0x846ca68b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The signature of a rendered memory view. Cost: O(pixels) plus a sort of a few × k sampled
 * hashes (hashes are sampled below a threshold that adapts until k distinct ones are found).
 */
export function viewSignature(view: MemoryView, k = SKETCH_SIZE): ViewSignature {
  const { voxelRef, chunks } = view;
  const seeds = new Int32Array(chunks.length);
  for (let i = 0; i < chunks.length; i++) seeds[i] = chunkSeed(chunks[i]!);
  const pixelsPerChunk = new Uint32Array(chunks.length);
  let covered = 0;
  for (let p = 0; p < voxelRef.length; p++) {
    const ref = voxelRef[p]!;
    if (ref < 0) continue;
    pixelsPerChunk[ref >>> 15]!++;
    covered++;
  }
  if (covered === 0) {
    return {
      sketch: new Uint32Array(0),
      voxelCount: 0,
      cells: new Float64Array(0),
      cellWeights: new Float32Array(0),
    };
  }
  let threshold = Math.min(4294967296, (4294967296 * 8 * k) / covered);
  let sketch = new Uint32Array(0);
  let distinct = 0;
  for (;;) {
    const uniq = visibleHashesBelow(voxelRef, chunks, seeds, threshold);
    distinct = uniq.length;
    if (distinct >= k || threshold >= 4294967296) {
      sketch = uniq.slice(0, k);
      break;
    }
    threshold = Math.min(4294967296, threshold * 4);
  }
  // KMV estimate of the distinct count: (k − 1) / (k-th smallest hash as a fraction of 2^32).
  const voxelCount = sketch.length < k ? sketch.length : (k - 1) / ((sketch[k - 1]! + 1) / 4294967296);
  const order = chunks.map((_c, i) => i).filter((i) => pixelsPerChunk[i]! > 0);
  order.sort((a, b) => chunks[a]!.key - chunks[b]!.key);
  const cells = new Float64Array(order.length);
  const cellWeights = new Float32Array(order.length);
  order.forEach((ci, j) => {
    cells[j] = chunks[ci]!.key;
    cellWeights[j] = pixelsPerChunk[ci]! / covered;
  });
  return { sketch, voxelCount: distinct === 0 ? 0 : voxelCount, cells, cellWeights };
}

function uniqueSorted(a: Uint32Array): Uint32Array {
  if (a.length === 0) return a;
  let n = 1;
  for (let i = 1; i < a.length; i++) if (a[i] !== a[n - 1]) a[n++] = a[i]!;
  return a.subarray(0, n);
}

/**
 * Estimated Jaccard index (IoU) of two visible voxel sets from their bottom-k sketches: among the k
 * smallest hashes of the union, the fraction present in both. O(k).
 */
export function sketchIoU(a: Uint32Array, b: Uint32Array, k = SKETCH_SIZE): number {
  let i = 0;
  let j = 0;
  let seen = 0;
  let both = 0;
  while (seen < k && (i < a.length || j < b.length)) {
    const x = i < a.length ? a[i]! : 4294967296;
    const y = j < b.length ? b[j]! : 4294967296;
    if (x === y) {
      both++;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
    seen++;
  }
  return seen === 0 ? 0 : both / seen;
}

/**
 * The distinct retrieval-cell hashes below `threshold` among the covered pixels, ascending.
 * Consecutive pixels showing the same voxel are hashed once.
 */
function visibleHashesBelow(
  voxelRef: Int32Array,
  chunks: readonly VoxelChunk[],
  seeds: ArrayLike<number>,
  threshold: number,
): Uint32Array {
  const sample: number[] = [];
  let prev = -1;
  for (let p = 0; p < voxelRef.length; p++) {
    const ref = voxelRef[p]!;
    if (ref < 0 || ref === prev) continue;
    prev = ref;
    const h = voxelHash(seeds[ref >>> 15]!, chunks[ref >>> 15]!.data[(ref & 32767) * STRIDE + KEY]!);
    if (h < threshold) sample.push(h);
  }
  return uniqueSorted(Uint32Array.from(sample).sort());
}

/** Every distinct visible retrieval cell's stable hash, ascending: the exact set (slow path, for baselines). */
export function visibleVoxelSet(view: MemoryView): Uint32Array {
  const seeds = view.chunks.map(chunkSeed);
  return visibleHashesBelow(view.voxelRef, view.chunks, seeds, 4294967296).slice();
}

/** Exact Jaccard index of two ascending distinct sets. O(|a| + |b|). */
export function exactIoU(a: Uint32Array, b: Uint32Array): number {
  let i = 0;
  let j = 0;
  let inter = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) {
      inter++;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  const union = a.length + b.length - inter;
  return union === 0 ? 0 : inter / union;
}
