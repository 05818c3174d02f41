/**
 * One chunk of the sparse voxel grid: up to CHUNK_VOXELS³ voxels in structure-of-arrays typed
 * arrays plus a small open-addressing hash from local voxel key to slot. Chunks are the unit of
 * frustum culling, persistence and eviction.
 *
 * Per voxel: quantised position (3 × u16: the running mean of the observed points inside the
 * voxel, in 1/2048 voxel units), colour mean (3 × u16, 8.8 fixed point), observation count (u16,
 * saturating), confidence (u8, 0–255 ↔ 0–1) and its local key (u16), plus ~2–5 bytes of hash slots.
 */
export const CHUNK_BITS = 5;
export const CHUNK_VOXELS = 1 << CHUNK_BITS; // 32 voxels per chunk edge
export const SUB_BITS = 11; // sub-voxel position resolution: 2048 steps per voxel
export const SUB_STEPS = 1 << SUB_BITS;
const MASK = CHUNK_VOXELS - 1;
const INITIAL_CAPACITY = 64;

/** Packs a chunk's integer coordinates (each in ±2^16) into one exact float64 map key. */
export function chunkKeyOf(cx: number, cy: number, cz: number): number {
  return (cx + 65536) * 17179869184 + (cy + 65536) * 131072 + (cz + 65536);
}

/** Unpacks `chunkKeyOf`. */
export function chunkCoordsOf(key: number): [number, number, number] {
  const cz = (key % 131072) - 65536;
  const rest = Math.floor(key / 131072);
  return [Math.floor(rest / 131072) - 65536, (rest % 131072) - 65536, cz];
}

/** Local voxel key from local voxel coordinates (each 0..31). */
export const localKeyOf = (lx: number, ly: number, lz: number): number =>
  ((lx & MASK) << (2 * CHUNK_BITS)) | ((ly & MASK) << CHUNK_BITS) | (lz & MASK);

export class VoxelChunk {
  /** Number of voxels stored (slots 0..count-1). */
  count = 0;
  /** Quantised position inside the chunk, xyz interleaved, 1/2048 voxel units (local voxel << 11 | sub). */
  pos: Uint16Array;
  /** Colour mean, rgb interleaved, 8.8 fixed point (value × 256). */
  color: Uint16Array;
  /** Observations fused into the voxel (saturates at 65535). */
  observations: Uint16Array;
  /** Confidence 0–255 (↔ 0–1): grows with close, repeated observations. */
  confidence: Uint8Array;
  localKey: Uint16Array;
  /** Hash table of slot + 1 (0 = empty), linear probing, power-of-two size. */
  private table: Uint16Array;
  private tableShift: number;
  /** Bumped on every change; persistence compares it to what it last wrote. */
  revision = 0;

  constructor(
    readonly key: number,
    readonly cx: number,
    readonly cy: number,
    readonly cz: number,
    capacity = INITIAL_CAPACITY,
  ) {
    this.pos = new Uint16Array(capacity * 3);
    this.color = new Uint16Array(capacity * 3);
    this.observations = new Uint16Array(capacity);
    this.confidence = new Uint8Array(capacity);
    this.localKey = new Uint16Array(capacity);
    const bits = Math.max(4, Math.ceil(Math.log2(capacity / 0.75)));
    this.table = new Uint16Array(1 << bits);
    this.tableShift = 32 - bits;
  }

  get capacity(): number {
    return this.observations.length;
  }

  /** Slot of a local key, or −1. O(1) expected. */
  find(localKey: number): number {
    const table = this.table;
    const mask = table.length - 1;
    let h = Math.imul(localKey, 0x9e3779b1) >>> this.tableShift;
    for (;;) {
      const s = table[h]!;
      if (s === 0) return -1;
      if (this.localKey[s - 1] === localKey) return s - 1;
      h = (h + 1) & mask;
    }
  }

  /** Slot of a local key, inserting an empty voxel (count 0) when absent. O(1) amortised. */
  findOrInsert(localKey: number): number {
    const table = this.table;
    const mask = table.length - 1;
    let h = Math.imul(localKey, 0x9e3779b1) >>> this.tableShift;
    for (;;) {
      const s = table[h]!;
      if (s === 0) break;
      if (this.localKey[s - 1] === localKey) return s - 1;
      h = (h + 1) & mask;
    }
    const slot = this.count;
    if (slot === this.observations.length) {
      this.grow(slot * 2);
      return this.findOrInsert(localKey);
    }
    if ((slot + 1) * 4 > table.length * 3) {
      this.rehash(table.length * 2);
      return this.findOrInsert(localKey);
    }
    this.count = slot + 1;
    this.localKey[slot] = localKey;
    this.observations[slot] = 0;
    this.confidence[slot] = 0;
    table[h] = slot + 1;
    return slot;
  }

  /** Resizes the per-voxel arrays to `capacity` (≥ count). */
  grow(capacity: number): void {
    capacity = Math.max(capacity, this.count, 1);
    const copy = <T extends Uint16Array | Uint8Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a.subarray(0, Math.min(a.length, n)));
      return b;
    };
    this.pos = copy(this.pos, capacity * 3);
    this.color = copy(this.color, capacity * 3);
    this.observations = copy(this.observations, capacity);
    this.confidence = copy(this.confidence, capacity);
    this.localKey = copy(this.localKey, capacity);
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
      let h = Math.imul(this.localKey[s]!, 0x9e3779b1) >>> this.tableShift;
      while (this.table[h] !== 0) h = (h + 1) & mask;
      this.table[h] = s + 1;
    }
  }

  /** Bytes held by this chunk's typed arrays. */
  get byteLength(): number {
    return (
      this.pos.byteLength +
      this.color.byteLength +
      this.observations.byteLength +
      this.confidence.byteLength +
      this.localKey.byteLength +
      this.table.byteLength
    );
  }
}
