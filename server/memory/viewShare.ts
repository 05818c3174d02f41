import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { type MemoryView, type RenderViewOptions, renderMemoryView } from './renderView.ts';
import { VoxelChunk } from './voxelChunk.ts';
import { VoxelGrid } from './voxelGrid.ts';

/**
 * Memory views rendered in other threads, from the same chunk records (SharedArrayBuffers, never
 * copied; a publisher moves a chunk into them the first time it syncs it, see VoxelChunk.share). The
 * owning thread keeps a `GridPublisher` per view thread and sends a `GridSync` with
 * each batch of views; the view thread applies it to its `GridMirror`, which renders with the one
 * `renderMemoryView`. A mirror sees every chunk's count and revision as they were when the sync was
 * made, and renders the chunks in the grid's own order, so a view is the same bytes as one rendered
 * in the owning thread at that moment. Records another thread fuses into while a view is being
 * drawn may show their new means (positions and colours move in place); records added after the
 * sync are not drawn (they lie beyond its count), and a chunk that grows moves to a new buffer.
 */

/** A chunk the mirror has not seen (or a new chunk under a known key), or whose records moved. */
interface SharedChunk {
  readonly key: number;
  readonly cx: number;
  readonly cy: number;
  readonly cz: number;
  readonly data: Uint16Array;
  readonly cells: Uint32Array;
  /** A different chunk object than the mirror holds under this key (removed and loaded again). */
  readonly replaces: boolean;
}

/** What a mirror needs to catch up with its grid since the last sync. Structured-cloneable. */
export interface GridSync {
  readonly voxelSizeM: number;
  /** Keys of chunks no longer in the grid. */
  readonly removed: readonly number[];
  /** In the grid's order. */
  readonly added: readonly SharedChunk[];
  /** Per chunk whose count or revision moved on (added ones included): key, count, revision. */
  readonly changed: Float64Array;
}

/** A view as a view thread returns it: `chunkKeys` name the chunks `voxelRef` points into. */
export interface SharedViewResult {
  readonly rgb: Uint8Array;
  readonly depth: Float32Array;
  readonly coverage: Uint8Array;
  readonly voxelRef: Int32Array;
  readonly freeDepth?: Float32Array;
  readonly chunkKeys: Float64Array;
}

interface Sent {
  chunk: VoxelChunk;
  data: Uint16Array;
  count: number;
  revision: number;
}

/**
 * The owning thread's side, one per (grid, view thread): what that thread's mirror holds. A sync
 * costs one pass over the grid's chunks (a map lookup each) plus the changed ones.
 */
export class GridPublisher {
  private readonly sent = new Map<number, Sent>();

  constructor(private readonly grid: VoxelGrid) {}

  sync(): GridSync {
    const grid = this.grid;
    const added: SharedChunk[] = [];
    const changed: number[] = [];
    let replaced = false;
    for (const c of grid.chunks()) {
      c.share();
      const s = this.sent.get(c.key);
      if (s && s.chunk === c && s.data === c.data && s.count === c.count && s.revision === c.revision)
        continue;
      if (!s || s.chunk !== c || s.data !== c.data) {
        const replaces = s !== undefined && s.chunk !== c;
        replaced ||= replaces;
        added.push({ key: c.key, cx: c.cx, cy: c.cy, cz: c.cz, data: c.data, cells: c.cells, replaces });
      }
      changed.push(c.key, c.count, c.revision);
      this.sent.set(c.key, { chunk: c, data: c.data, count: c.count, revision: c.revision });
    }
    const removed: number[] = [];
    if (replaced || this.sent.size !== grid.chunkCount)
      for (const [key, s] of this.sent)
        if (grid.getChunk(key) !== s.chunk) {
          if (!grid.hasChunk(key)) {
            removed.push(key);
            this.sent.delete(key);
          }
        }
    return { voxelSizeM: grid.voxelSizeM, removed, added, changed: Float64Array.from(changed) };
  }

  /** The chunk the mirror knows under `key` (to resolve a view's `chunkKeys`). */
  chunk(key: number): VoxelChunk | undefined {
    return this.sent.get(key)?.chunk;
  }
}

/**
 * A view thread's copy of one grid's chunk table (the records themselves are shared). It keeps the
 * grid's chunk order: new chunks are appended, and a chunk loaded again under a known key is
 * removed and appended, as the owning grid does when it evicts and reloads one.
 */
export class GridMirror {
  private grid: VoxelGrid | undefined;

  apply(sync: GridSync): VoxelGrid {
    this.grid ??= new VoxelGrid(sync.voxelSizeM);
    const grid = this.grid;
    for (const key of sync.removed) grid.removeChunk(key);
    for (const a of sync.added) {
      // A fresh mirror chunk either way (new chunk, or records moved): its level-of-detail cache is stale.
      const chunk = new VoxelChunk(a.key, a.cx, a.cy, a.cz, 0, { data: a.data, cells: a.cells });
      if (a.replaces) grid.removeChunk(a.key);
      grid.putChunk(chunk);
    }
    const { changed } = sync;
    for (let i = 0; i < changed.length; i += 3) {
      const c = grid.getChunk(changed[i]!)!;
      c.count = changed[i + 1]!;
      c.revision = changed[i + 2]!;
    }
    return grid;
  }

  /** Renders a view of the grid as last synced. */
  render(pose: Pose, k: Intrinsics, opts?: RenderViewOptions): SharedViewResult {
    if (!this.grid) throw new Error('render before the first sync');
    const v = renderMemoryView(this.grid, pose, k, opts);
    return {
      rgb: v.rgb,
      depth: v.depth,
      coverage: v.coverage,
      voxelRef: v.voxelRef,
      freeDepth: v.freeDepth,
      chunkKeys: Float64Array.from(v.chunks, (c) => c.key),
    };
  }
}

/** A view thread's result as a MemoryView of the owning thread's chunks (those of the sync). */
export function viewFromShared(r: SharedViewResult, publisher: GridPublisher, k: Intrinsics): MemoryView {
  return {
    width: k.width,
    height: k.height,
    rgb: r.rgb,
    depth: r.depth,
    coverage: r.coverage,
    voxelRef: r.voxelRef,
    freeDepth: r.freeDepth,
    chunks: Array.from(r.chunkKeys, (key) => publisher.chunk(key)!),
  };
}

/** The buffers of a result, to transfer rather than copy. */
export function transferables(r: SharedViewResult): ArrayBuffer[] {
  return [r.rgb, r.depth, r.coverage, r.voxelRef, r.chunkKeys, ...(r.freeDepth ? [r.freeDepth] : [])].map(
    (a) => a.buffer as ArrayBuffer,
  );
}
