import type { Bounds, EditRegion } from '../../shared/edit/editOps.ts';
import { check, SpatiaError } from '../../shared/errors.ts';
import {
  AUTHORED,
  CB,
  CG,
  CHUNK_VOXELS,
  CONF,
  CR,
  chunkKeyOf,
  OBS,
  PX,
  PY,
  PZ,
  STRIDE,
  SUB_STEPS,
  VoxelChunk,
} from './voxelChunk.ts';

/**
 * The default voxel edge, metres: the paper sweeps 0.01–0.07 m; 2 cm keeps held-out views within
 * ~1 dB of 1 cm on our scenes at a third of the voxels.
 */
export const DEFAULT_VOXEL_SIZE_M = 0.02;

/**
 * Farthest depth fused by default, metres. Content beyond it (a far horizon) is not remembered: a
 * model redraws it from the reference keyframes it is given, or invents it again.
 */
export const FUSE_MAX_DEPTH_M = 20;

/** Smallest and largest voxel edge the grid accepts, metres. */
const MIN_VOXEL_SIZE_M = 0.001;
const MAX_VOXEL_SIZE_M = 10;

/** Throws INVALID_VOXEL_SIZE unless `voxelSizeM` is a finite number in [0.001, 10] m. */
export function validateVoxelSize(voxelSizeM: number): void {
  check(
    typeof voxelSizeM === 'number' &&
      Number.isFinite(voxelSizeM) &&
      voxelSizeM >= MIN_VOXEL_SIZE_M &&
      voxelSizeM <= MAX_VOXEL_SIZE_M,
    'INVALID_VOXEL_SIZE',
    `voxel size must be a finite number of metres in [${MIN_VOXEL_SIZE_M}, ${MAX_VOXEL_SIZE_M}], got ${voxelSizeM}`,
  );
}

/** An erased region the memory keeps empty (see carvedSpace.ts). */
export interface CarvedRegion {
  /** The region in world metres. */
  readonly world: EditRegion;
  /** The same region in voxel units (what fusion tests voxel centres against). */
  readonly voxels: EditRegion;
  readonly bounds: Bounds;
}

/** One voxel as plain values (for tests, export and inspection; the hot paths read the chunk arrays). */
export interface VoxelRecord {
  /** World position of the voxel's point, metres. */
  x: number;
  y: number;
  z: number;
  /** Mean colour, 0–255 with 1/256 resolution. */
  r: number;
  g: number;
  b: number;
  observations: number;
  /** 0–1. */
  confidence: number;
  /** Written by an edit (placed or recoloured): fusion leaves it as it is. */
  authored: boolean;
}

/**
 * The spatial memory's point store: a sparse voxel grid of fixed voxel size, stored as a hash map
 * of chunks (CHUNK_VOXELS³ voxels each) over structure-of-arrays typed arrays.
 * Costs: chunk lookup O(1) (Map), voxel lookup O(1) expected (per-chunk hash), memory ≈ 20–28 B/voxel.
 */
export class VoxelGrid {
  readonly voxelSizeM: number;
  /** Chunk edge in metres. */
  readonly chunkSizeM: number;
  /** Quantisation step of voxel positions, metres. */
  readonly positionStepM: number;
  private readonly chunkMap = new Map<number, VoxelChunk>();
  /** Bumped by every mutation (fuse, import, load, edit). */
  revision = 0;
  /** Erased regions fusion must leave empty, by the chunks they reach into (see carvedSpace.ts). */
  readonly carvedByChunk = new Map<number, EditRegion[]>();
  /** Every erased region, in world metres and in voxel units (see carvedSpace.ts). */
  readonly carvedRegions = new Set<CarvedRegion>();

  constructor(voxelSizeM: number) {
    validateVoxelSize(voxelSizeM);
    this.voxelSizeM = voxelSizeM;
    this.chunkSizeM = voxelSizeM * CHUNK_VOXELS;
    this.positionStepM = voxelSizeM / SUB_STEPS;
  }

  /** All resident chunks (iteration order = insertion order). */
  chunks(): IterableIterator<VoxelChunk> {
    return this.chunkMap.values();
  }

  get chunkCount(): number {
    return this.chunkMap.size;
  }

  getChunk(key: number): VoxelChunk | undefined {
    return this.chunkMap.get(key);
  }

  /** The chunk at integer chunk coordinates, created empty when absent. */
  ensureChunk(cx: number, cy: number, cz: number): VoxelChunk {
    if (!(Math.abs(cx) < 65536 && Math.abs(cy) < 65536 && Math.abs(cz) < 65536)) {
      throw new SpatiaError(
        'CAPACITY',
        `chunk (${cx}, ${cy}, ${cz}) is outside the addressable world (±65536 chunks of ${this.chunkSizeM} m)`,
      );
    }
    const key = chunkKeyOf(cx, cy, cz);
    let c = this.chunkMap.get(key);
    if (!c) {
      c = new VoxelChunk(key, cx, cy, cz);
      c.carved = this.carvedByChunk.get(key);
      this.chunkMap.set(key, c);
    }
    return c;
  }

  hasChunk(key: number): boolean {
    return this.chunkMap.has(key);
  }

  /** Adds a whole chunk (loading); replaces one with the same key. */
  putChunk(chunk: VoxelChunk): void {
    chunk.carved = this.carvedByChunk.get(chunk.key);
    this.chunkMap.set(chunk.key, chunk);
    this.revision++;
  }

  /** Removes a chunk from RAM (eviction or deletion); returns it. */
  removeChunk(key: number): VoxelChunk | undefined {
    const c = this.chunkMap.get(key);
    if (c) {
      this.chunkMap.delete(key);
      this.revision++;
    }
    return c;
  }

  /** Number of voxels resident. O(chunks). */
  get voxelCount(): number {
    let n = 0;
    for (const c of this.chunkMap.values()) n += c.count;
    return n;
  }

  /** Bytes held by the typed arrays of all resident chunks. O(chunks). */
  get byteLength(): number {
    let n = 0;
    for (const c of this.chunkMap.values()) n += c.byteLength;
    return n;
  }

  /** Bytes held by render caches (chunk levels of detail), not counted in `byteLength`. */
  get cacheByteLength(): number {
    let n = 0;
    for (const c of this.chunkMap.values()) n += c.cacheByteLength;
    return n;
  }

  /** Drops spare capacity and render caches in every chunk. */
  trim(): void {
    for (const c of this.chunkMap.values()) {
      c.trim();
      c.dropCaches();
    }
  }

  /** Calls `fn` with every voxel as a record. Allocation-light but not for hot paths. */
  forEachVoxel(fn: (v: VoxelRecord) => void): void {
    const rec: VoxelRecord = {
      x: 0,
      y: 0,
      z: 0,
      r: 0,
      g: 0,
      b: 0,
      observations: 0,
      confidence: 0,
      authored: false,
    };
    for (const c of this.chunkMap.values()) {
      const ox = c.cx * this.chunkSizeM;
      const oy = c.cy * this.chunkSizeM;
      const oz = c.cz * this.chunkSizeM;
      const d = c.data;
      for (let s = 0, o = 0; s < c.count; s++, o += STRIDE) {
        rec.x = ox + d[o + PX]! * this.positionStepM;
        rec.y = oy + d[o + PY]! * this.positionStepM;
        rec.z = oz + d[o + PZ]! * this.positionStepM;
        rec.r = d[o + CR]! / 256;
        rec.g = d[o + CG]! / 256;
        rec.b = d[o + CB]! / 256;
        rec.observations = d[o + OBS]!;
        rec.confidence = (d[o + CONF]! & 255) / 255;
        rec.authored = (d[o + CONF]! & AUTHORED) !== 0;
        fn(rec);
      }
    }
  }

  /** Integer voxel coordinates of a world point. */
  voxelOf(x: number, y: number, z: number): [number, number, number] {
    const inv = 1 / this.voxelSizeM;
    return [Math.floor(x * inv), Math.floor(y * inv), Math.floor(z * inv)];
  }
}
