import type { EditRegion } from '../../shared/edit/editOps.ts';

/**
 * One chunk of the sparse voxel grid: up to CHUNK_VOXELS³ voxels as interleaved 18-byte records
 * in one Uint16Array, plus a small open-addressing hash from local voxel key to slot. Chunks are
 * the unit of frustum culling, persistence and eviction.
 *
 * A record (9 × u16): quantised position x, y, z (the running mean of the observed points inside
 * the voxel: local voxel << 11 | sub-voxel position in 1/2048 steps), colour mean r, g, b (8.8 fixed
 * point), observation count (saturating), confidence (0–255 ↔ 0–1) and local key. Interleaving
 * keeps a voxel update to one cache line: a fuse touches ~90 000 voxels per frame at random.
 */
export const CHUNK_BITS = 5;
export const CHUNK_VOXELS = 1 << CHUNK_BITS; // 32 voxels per chunk edge
export const SUB_BITS = 11; // sub-voxel position resolution: 2048 steps per voxel
export const SUB_STEPS = 1 << SUB_BITS;

/** Record layout: u16 words per voxel and the offset of each field. */
export const STRIDE = 9;
export const PX = 0;
export const PY = 1;
export const PZ = 2;
export const CR = 3;
export const CG = 4;
export const CB = 5;
export const OBS = 6;
export const CONF = 7;
export const KEY = 8;
/**
 * Flag in the CONF word (above its 0–255 confidence): the voxel was written by an edit (placed or
 * recoloured), and fusion leaves it as it is.
 */
export const AUTHORED = 0x100;

const MASK = CHUNK_VOXELS - 1;
const INITIAL_CAPACITY = 64;

/**
 * Free space is kept per cell of FREE_CELL_VOXELS³ voxels (16 cm at 2 cm voxels): a cell is free
 * when a fused ray passed through it before its surface and no voxel lies in it. 4³ = 64 cells per
 * chunk, one bit each.
 */
const FREE_CELL_BITS = 3;
export const FREE_CELL_VOXELS = 1 << FREE_CELL_BITS;
/** Free-space cells per chunk edge (4). */
export const FREE_CELLS_PER_EDGE = CHUNK_VOXELS / FREE_CELL_VOXELS;
const CELL_EDGE_BITS = CHUNK_BITS - FREE_CELL_BITS;

/** Free-space cell (0..63) of a voxel's local key. */
const freeCellOfKey = (localKey: number): number =>
  (((localKey >> (2 * CHUNK_BITS + FREE_CELL_BITS)) & 3) << (2 * CELL_EDGE_BITS)) |
  (((localKey >> (CHUNK_BITS + FREE_CELL_BITS)) & 3) << CELL_EDGE_BITS) |
  ((localKey >> FREE_CELL_BITS) & 3);

/** Packs a chunk's integer coordinates (each in ±2^16) into one exact float64 map key. */
export function chunkKeyOf(cx: number, cy: number, cz: number): number {
  return (cx + 65536) * 17179869184 + (cy + 65536) * 131072 + (cz + 65536);
}

/** Local voxel key from local voxel coordinates (each 0..31). */
export const localKeyOf = (lx: number, ly: number, lz: number): number =>
  ((lx & MASK) << (2 * CHUNK_BITS)) | ((ly & MASK) << CHUNK_BITS) | (lz & MASK);

/** Coarser levels of detail kept per chunk for rendering distant chunks (2× and 4× voxels). */
export const MAX_LOD = 2;
/** LOD record: quantised position x, y, z, colour r, g, b (8.8), and the slot of a member voxel. */
export const LOD_STRIDE = 7;

/** A chunk's voxels merged into cells of 2^level voxels per edge: mean position and colour. */
export interface ChunkLod {
  readonly level: number;
  readonly count: number;
  readonly data: Uint16Array;
  /** The chunk revision it was built from. */
  readonly revision: number;
}

/** A record array of `length` words, in a SharedArrayBuffer when `shared` (see VoxelChunk.share). */
const recordArray = (length: number, shared: boolean): Uint16Array =>
  shared ? new Uint16Array(new SharedArrayBuffer(length * 2)) : new Uint16Array(length);

const lodIndex = new Int32Array(1 << (3 * (CHUNK_BITS - 1))).fill(-1);
const lodSums = new Float64Array(lodIndex.length * 7);

export class VoxelChunk {
  /** Number of voxels stored (slots 0..count-1). */
  count = 0;
  /** Voxel records, STRIDE words each (see the field offsets above). */
  data: Uint16Array;
  /** Hash table of slot + 1 (0 = empty), linear probing, power-of-two size. */
  private table: Uint16Array;
  private tableShift: number;
  /** Set to the grid's revision on every change; persistence compares it to what it last wrote. */
  revision = 0;
  /**
   * Erased regions that reach into this chunk, in voxel units (see carvedSpace.ts): fusion writes
   * no voxel whose centre lies in one. Set by the grid; undefined for almost every chunk.
   */
  carved: readonly EditRegion[] | undefined = undefined;
  /** Render caches for levels 1..MAX_LOD, rebuilt when `revision` moves on. */
  private lods: (ChunkLod | undefined)[] = [];
  /**
   * 64-bit cell masks as u32 pairs: [free low, free high, occupied low, occupied high]. Occupied:
   * some voxel lies in the cell; a cell is never both (a surface fused into free space wins).
   */
  cells: Uint32Array;

  constructor(
    readonly key: number,
    readonly cx: number,
    readonly cy: number,
    readonly cz: number,
    capacity = INITIAL_CAPACITY,
    shared?: { readonly data: Uint16Array; readonly cells: Uint32Array },
  ) {
    this.data = shared?.data ?? recordArray(capacity * STRIDE, false);
    this.cells = shared?.cells ?? new Uint32Array(4);
    const bits = Math.max(4, Math.ceil(Math.log2(capacity / 0.75)));
    this.table = new Uint16Array(1 << bits);
    this.tableShift = 32 - bits;
  }

  get capacity(): number {
    return this.data.length / STRIDE;
  }

  /** Slot of a local key, or −1. O(1) expected. */
  find(localKey: number): number {
    const table = this.table;
    const mask = table.length - 1;
    let h = Math.imul(localKey, 0x9e3779b1) >>> this.tableShift;
    for (;;) {
      const s = table[h]!;
      if (s === 0) return -1;
      if (this.data[(s - 1) * STRIDE + KEY] === localKey) return s - 1;
      h = (h + 1) & mask;
    }
  }

  /** Slot of a local key, inserting a zeroed voxel (0 observations) when absent. O(1) amortised. */
  findOrInsert(localKey: number): number {
    const table = this.table;
    const data = this.data;
    const mask = table.length - 1;
    let h = Math.imul(localKey, 0x9e3779b1) >>> this.tableShift;
    for (;;) {
      const s = table[h]!;
      if (s === 0) break;
      if (data[(s - 1) * STRIDE + KEY] === localKey) return s - 1;
      h = (h + 1) & mask;
    }
    const slot = this.count;
    if (slot * STRIDE === data.length) {
      this.grow(slot * 2);
      return this.findOrInsert(localKey);
    }
    if ((slot + 1) * 4 > table.length * 3) {
      this.rehash(table.length * 2);
      return this.findOrInsert(localKey);
    }
    this.count = slot + 1;
    data[slot * STRIDE + KEY] = localKey;
    table[h] = slot + 1;
    const cell = freeCellOfKey(localKey);
    const word = cell >> 5;
    const bit = 1 << (cell & 31);
    this.cells[2 + word]! |= bit;
    this.cells[word]! &= ~bit;
    return slot;
  }

  /**
   * Removes the voxels whose slot `drop` accepts (slots are renumbered), then rebuilds the hash and
   * the occupied-cell mask. O(count); for edits, not for the per-frame paths.
   */
  removeWhere(drop: (slot: number) => boolean): number {
    const d = this.data;
    let kept = 0;
    for (let s = 0; s < this.count; s++) {
      if (drop(s)) continue;
      if (kept !== s) d.copyWithin(kept * STRIDE, s * STRIDE, (s + 1) * STRIDE);
      kept++;
    }
    const removed = this.count - kept;
    if (removed === 0) return 0;
    // The records past `count` stay as they were: a view thread mid-render with the old count reads valid voxels.
    this.count = kept;
    this.rehash(this.table.length);
    this.recomputeOccupied();
    return removed;
  }

  /** Sets the occupied-cell mask from the voxels held (after removals). */
  private recomputeOccupied(): void {
    const cells = this.cells;
    cells[2] = 0;
    cells[3] = 0;
    for (let s = 0; s < this.count; s++) {
      const cell = freeCellOfKey(this.data[s * STRIDE + KEY]!);
      cells[2 + (cell >> 5)]! |= 1 << (cell & 31);
    }
  }

  /** Whether cell `cell` (0..63) holds a voxel. */
  isOccupied(cell: number): boolean {
    return (this.cells[2 + (cell >> 5)]! & (1 << (cell & 31))) !== 0;
  }

  /** Forgets that cell `cell` is known empty. */
  unmarkFree(cell: number): void {
    this.cells[cell >> 5]! &= ~(1 << (cell & 31));
  }

  /** Whether records and cell masks live in SharedArrayBuffers (growing keeps them there). */
  get isShared(): boolean {
    return this.data.buffer instanceof SharedArrayBuffer;
  }

  /**
   * Moves records and cell masks into SharedArrayBuffers, so view threads read them in place (see
   * viewShare.ts). Only then: a SharedArrayBuffer costs 3-5x an ArrayBuffer to allocate at 20-70 KB
   * (measured), and fusion grows chunks all the time.
   */
  share(): void {
    if (this.isShared) return;
    const data = recordArray(this.data.length, true);
    data.set(this.data);
    this.data = data;
    const cells = new Uint32Array(new SharedArrayBuffer(16));
    cells.set(this.cells);
    this.cells = cells;
  }

  /** Whether free-space cell `cell` (0..63) is known to be empty. */
  isFree(cell: number): boolean {
    return (this.cells[cell >> 5]! & (1 << (cell & 31))) !== 0;
  }

  /** Marks cell `cell` known empty unless a voxel lies in it; true when it changed. */
  markFree(cell: number): boolean {
    const word = cell >> 5;
    const bit = 1 << (cell & 31);
    const cells = this.cells;
    if ((cells[word]! & bit) !== 0 || (cells[2 + word]! & bit) !== 0) return false;
    cells[word]! |= bit;
    return true;
  }

  /** Whether any cell is known free. */
  get hasFreeSpace(): boolean {
    return (this.cells[0]! | this.cells[1]!) !== 0;
  }

  /** No voxel and no known free space: nothing worth keeping or storing. */
  get isEmpty(): boolean {
    return this.count === 0 && !this.hasFreeSpace;
  }

  /** Resizes the record array to `capacity` voxels (≥ count). */
  grow(capacity: number): void {
    capacity = Math.max(capacity, this.count, 1);
    const next = recordArray(capacity * STRIDE, this.isShared);
    next.set(this.data.subarray(0, Math.min(this.data.length, next.length)));
    this.data = next;
  }

  /**
   * The chunk at level of detail `level` (1..MAX_LOD): voxels merged by cells of 2^level voxels
   * per edge. Built in O(count) on first use after a change, then cached.
   */
  lod(level: number): ChunkLod {
    const cached = this.lods[level];
    if (cached && cached.revision === this.revision) return cached;
    const cellBits = CHUNK_BITS - level;
    // Shared scratch sized for level 1 (the finest); entries are reset after use below.
    const index = lodIndex;
    const sums = lodSums;
    const order: number[] = [];
    const d = this.data;
    for (let s = 0, o = 0; s < this.count; s++, o += STRIDE) {
      const cell =
        ((d[o + PX]! >> (SUB_BITS + level)) << (2 * cellBits)) |
        ((d[o + PY]! >> (SUB_BITS + level)) << cellBits) |
        (d[o + PZ]! >> (SUB_BITS + level));
      if (index[cell] === -1) {
        index[cell] = s;
        order.push(cell);
      }
      const c7 = cell * 7;
      for (let f = 0; f < 6; f++) sums[c7 + f]! += d[o + f]!;
      sums[c7 + 6]!++;
    }
    const out = new Uint16Array(order.length * LOD_STRIDE);
    order.forEach((cell, i) => {
      const c7 = cell * 7;
      const n = sums[c7 + 6]!;
      for (let f = 0; f < 6; f++) out[i * LOD_STRIDE + f] = Math.round(sums[c7 + f]! / n);
      out[i * LOD_STRIDE + 6] = index[cell]!;
      index[cell] = -1;
      sums.fill(0, c7, c7 + 7);
    });
    const lod: ChunkLod = { level, count: order.length, data: out, revision: this.revision };
    this.lods[level] = lod;
    return lod;
  }

  /** Bytes held by render caches (levels of detail); freed by `dropCaches`. */
  get cacheByteLength(): number {
    return this.lods.reduce((a, l) => a + (l ? l.data.byteLength : 0), 0);
  }

  dropCaches(): void {
    this.lods = [];
  }

  /** Drops spare capacity (after loading or before measuring footprint). */
  trim(): void {
    if (this.capacity !== this.count) this.grow(this.count);
    const bits = Math.max(4, Math.ceil(Math.log2((this.count + 1) / 0.75)));
    if (1 << bits !== this.table.length) this.rehash(1 << bits);
  }

  private rehash(size: number): void {
    this.table = new Uint16Array(size);
    this.tableShift = 32 - Math.log2(size);
    const mask = size - 1;
    for (let s = 0; s < this.count; s++) {
      let h = Math.imul(this.data[s * STRIDE + KEY]!, 0x9e3779b1) >>> this.tableShift;
      while (this.table[h] !== 0) h = (h + 1) & mask;
      this.table[h] = s + 1;
    }
  }

  /** Bytes held by this chunk's typed arrays. */
  get byteLength(): number {
    return this.data.byteLength + this.table.byteLength + this.cells.byteLength;
  }
}
