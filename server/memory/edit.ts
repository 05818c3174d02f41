import {
  type Bounds,
  cubeInsideRegion,
  type EditOp,
  type EditRegion,
  MAX_EDIT_VOXELS,
  objectSurfacePoints,
  regionBounds,
} from '../../shared/edit/editOps.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { forEachChunkIn, isCarvedVoxel, regionInVoxels } from './carvedSpace.ts';
import {
  AUTHORED,
  CB,
  CG,
  CHUNK_BITS,
  CHUNK_VOXELS,
  CONF,
  CR,
  FREE_CELL_VOXELS,
  KEY,
  localKeyOf,
  OBS,
  PX,
  PY,
  PZ,
  STRIDE,
  SUB_BITS,
  SUB_STEPS,
  type VoxelChunk,
} from './voxelChunk.ts';
import type { VoxelGrid } from './voxelGrid.ts';

/**
 * Edits of the memory (pure: the grid in, a diff out). Each returns the exact voxels it changed,
 * before and after, so the edit can be undone and redone; the erased regions themselves are kept
 * empty by `carvedSpace.ts` (the world adds and lifts them with the edit).
 */

/** Observation count an edit's voxels carry (what fusion would give a well-seen surface). */
const AUTHORED_OBSERVATIONS = 64;

/** One chunk's part of an edit: per changed voxel its record before and after (absent: no voxel). */
interface ChunkDiff {
  readonly cx: number;
  readonly cy: number;
  readonly cz: number;
  readonly keys: number[];
  readonly before: (Uint16Array | undefined)[];
  readonly after: (Uint16Array | undefined)[];
  /** Free-space cells (64-bit mask as u32 low, high) this edit marked known empty. */
  readonly freed: [number, number];
}

/** What an edit changed: per chunk key, its voxels before and after. */
export interface EditDiff {
  readonly chunks: Map<number, ChunkDiff>;
  /** Voxels changed. */
  readonly voxels: number;
}

/** A world point cloud to insert (the `world edit --insert-ply` tool): positions xyz, colours rgb. */
export interface PointsToInsert {
  readonly count: number;
  readonly positions: Float32Array;
  readonly colors: Uint8Array;
}

/** Axis-aligned bounds of a point cloud. */
export function boundsOfPoints(p: { readonly count: number; readonly positions: ArrayLike<number> }): Bounds {
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < p.count; i++)
    for (let a = 0; a < 3; a++) {
      const v = p.positions[i * 3 + a]!;
      if (v < min[a]!) min[a] = v;
      if (v > max[a]!) max[a] = v;
    }
  return { min: min as unknown as Bounds['min'], max: max as unknown as Bounds['max'] };
}

const record = (c: VoxelChunk, slot: number): Uint16Array => c.data.slice(slot * STRIDE, (slot + 1) * STRIDE);

function chunkDiff(diffs: Map<number, ChunkDiff>, c: VoxelChunk): ChunkDiff {
  let d = diffs.get(c.key);
  if (!d) {
    d = { cx: c.cx, cy: c.cy, cz: c.cz, keys: [], before: [], after: [], freed: [0, 0] };
    diffs.set(c.key, d);
  }
  return d;
}

const tooLarge = (n: number): SpatiaError =>
  new SpatiaError('CAPACITY', `the edit would change ${n} voxels: at most ${MAX_EDIT_VOXELS} per edit`);

/** Slots of `c` whose voxel centre lies in `region` (voxel units). */
function slotsIn(c: VoxelChunk, region: EditRegion): number[] {
  const out: number[] = [];
  const bx = c.cx << CHUNK_BITS,
    by = c.cy << CHUNK_BITS,
    bz = c.cz << CHUNK_BITS;
  const list = [region];
  const d = c.data;
  for (let s = 0; s < c.count; s++) {
    const key = d[s * STRIDE + KEY]!;
    const lx = key >> (2 * CHUNK_BITS),
      ly = (key >> CHUNK_BITS) & (CHUNK_VOXELS - 1),
      lz = key & (CHUNK_VOXELS - 1);
    if (isCarvedVoxel(list, bx + lx, by + ly, bz + lz)) out.push(s);
  }
  return out;
}

/** Resident chunks the region reaches into, with the slots inside it. */
function affected(grid: VoxelGrid, region: EditRegion): { chunk: VoxelChunk; slots: number[] }[] {
  const v = regionInVoxels(region, grid.voxelSizeM);
  const out: { chunk: VoxelChunk; slots: number[] }[] = [];
  forEachChunkIn(grid, regionBounds(region), (_x, _y, _z, key) => {
    const chunk = grid.getChunk(key);
    if (chunk) out.push({ chunk, slots: slotsIn(chunk, v) });
  });
  return out;
}

/** Voxels of the resident memory whose centre lies in `region` (the rule erase and fusion use). */
export function countVoxelsIn(grid: VoxelGrid, region: EditRegion): number {
  return affected(grid, region).reduce((a, h) => a + h.slots.length, 0);
}

/**
 * Removes every voxel whose centre lies in `region` and marks the free-space cells wholly inside it
 * known empty. Refused whole (CAPACITY) beyond MAX_EDIT_VOXELS.
 */
export function eraseRegion(grid: VoxelGrid, region: EditRegion): EditDiff {
  const hits = affected(grid, region);
  const n = hits.reduce((a, h) => a + h.slots.length, 0);
  if (n > MAX_EDIT_VOXELS) throw tooLarge(n);
  const v = regionInVoxels(region, grid.voxelSizeM);
  const diffs = new Map<number, ChunkDiff>();
  const revision = ++grid.revision;
  for (const { chunk, slots } of hits) {
    const diff = chunkDiff(diffs, chunk);
    for (const s of slots) {
      diff.keys.push(chunk.data[s * STRIDE + KEY]!);
      diff.before.push(record(chunk, s));
      diff.after.push(undefined);
    }
    const drop = new Set(slots);
    chunk.removeWhere((s) => drop.has(s));
    const bx = chunk.cx * CHUNK_VOXELS,
      by = chunk.cy * CHUNK_VOXELS,
      bz = chunk.cz * CHUNK_VOXELS;
    for (let cell = 0; cell < 64; cell++) {
      const x = bx + (cell >> 4) * FREE_CELL_VOXELS,
        y = by + ((cell >> 2) & 3) * FREE_CELL_VOXELS,
        z = bz + (cell & 3) * FREE_CELL_VOXELS;
      if (cubeInsideRegion(v, x, y, z, FREE_CELL_VOXELS) && chunk.markFree(cell))
        diff.freed[cell >> 5] = (diff.freed[cell >> 5]! | (1 << (cell & 31))) >>> 0;
    }
    chunk.revision = revision;
    if (diff.keys.length === 0 && diff.freed[0] === 0 && diff.freed[1] === 0) diffs.delete(chunk.key);
  }
  return { chunks: diffs, voxels: n };
}

/** Rec. 601 luma of an 8.8 colour. */
const luma = (r: number, g: number, b: number): number => 0.299 * r + 0.587 * g + 0.114 * b;

/**
 * Paints the voxels whose centre lies in `region` with `color`, keeping each voxel's brightness
 * relative to the region's mean (shading and texture stay), and marks them authored.
 */
function recolorRegion(grid: VoxelGrid, region: EditRegion, color: readonly number[]): EditDiff {
  const hits = affected(grid, region);
  const n = hits.reduce((a, h) => a + h.slots.length, 0);
  if (n > MAX_EDIT_VOXELS) throw tooLarge(n);
  let sum = 0;
  for (const { chunk, slots } of hits)
    for (const s of slots) {
      const o = s * STRIDE;
      sum += luma(chunk.data[o + CR]!, chunk.data[o + CG]!, chunk.data[o + CB]!);
    }
  const mean = n > 0 ? sum / n : 1;
  const diffs = new Map<number, ChunkDiff>();
  const revision = ++grid.revision;
  for (const { chunk, slots } of hits) {
    if (slots.length === 0) continue;
    const diff = chunkDiff(diffs, chunk);
    const d = chunk.data;
    for (const s of slots) {
      const o = s * STRIDE;
      diff.keys.push(d[o + KEY]!);
      diff.before.push(record(chunk, s));
      const gain = mean > 0 ? luma(d[o + CR]!, d[o + CG]!, d[o + CB]!) / mean : 1;
      d[o + CR] = Math.min(65535, Math.round(color[0]! * gain * 256));
      d[o + CG] = Math.min(65535, Math.round(color[1]! * gain * 256));
      d[o + CB] = Math.min(65535, Math.round(color[2]! * gain * 256));
      d[o + CONF] = d[o + CONF]! | AUTHORED;
      diff.after.push(record(chunk, s));
    }
    chunk.revision = revision;
  }
  return { chunks: diffs, voxels: n };
}

/**
 * Writes a point cloud into the memory as authored voxels: each voxel its points fall in takes
 * their mean position and colour (replacing what was there), full confidence.
 */
export function insertPoints(grid: VoxelGrid, points: PointsToInsert): EditDiff {
  const inv = 1 / grid.voxelSizeM;
  // Sums per voxel: sub-position x, y, z (voxel units), r, g, b, count.
  const sums = new Map<string, { v: [number, number, number]; s: Float64Array }>();
  const { positions, colors } = points;
  for (let i = 0; i < points.count; i++) {
    const gx = positions[i * 3]! * inv,
      gy = positions[i * 3 + 1]! * inv,
      gz = positions[i * 3 + 2]! * inv;
    const vx = Math.floor(gx),
      vy = Math.floor(gy),
      vz = Math.floor(gz);
    const id = `${vx},${vy},${vz}`;
    let e = sums.get(id);
    if (!e) {
      e = { v: [vx, vy, vz], s: new Float64Array(7) };
      sums.set(id, e);
      if (sums.size > MAX_EDIT_VOXELS) throw tooLarge(sums.size);
    }
    const s = e.s;
    s[0]! += gx - vx;
    s[1]! += gy - vy;
    s[2]! += gz - vz;
    s[3]! += colors[i * 3]!;
    s[4]! += colors[i * 3 + 1]!;
    s[5]! += colors[i * 3 + 2]!;
    s[6]!++;
  }
  // Refuse before the first write: every voxel must be addressable.
  for (const { v } of sums.values())
    if (!v.every((c) => Math.abs(c >> CHUNK_BITS) < 65536))
      throw new SpatiaError('CAPACITY', `a point lies outside the addressable world`);
  const diffs = new Map<number, ChunkDiff>();
  const revision = ++grid.revision;
  const maxSub = SUB_STEPS - 1;
  for (const { v, s } of sums.values()) {
    const [vx, vy, vz] = v;
    const chunk = grid.ensureChunk(vx >> CHUNK_BITS, vy >> CHUNK_BITS, vz >> CHUNK_BITS);
    const lx = vx & (CHUNK_VOXELS - 1),
      ly = vy & (CHUNK_VOXELS - 1),
      lz = vz & (CHUNK_VOXELS - 1);
    const key = localKeyOf(lx, ly, lz);
    const existing = chunk.find(key);
    const diff = chunkDiff(diffs, chunk);
    diff.keys.push(key);
    diff.before.push(existing >= 0 ? record(chunk, existing) : undefined);
    const slot = existing >= 0 ? existing : chunk.findOrInsert(key);
    const d = chunk.data;
    const o = slot * STRIDE;
    const count = s[6]!;
    d[o + PX] = (lx << SUB_BITS) | Math.min(maxSub, Math.floor((s[0]! / count) * SUB_STEPS));
    d[o + PY] = (ly << SUB_BITS) | Math.min(maxSub, Math.floor((s[1]! / count) * SUB_STEPS));
    d[o + PZ] = (lz << SUB_BITS) | Math.min(maxSub, Math.floor((s[2]! / count) * SUB_STEPS));
    d[o + CR] = Math.round((s[3]! / count) * 256);
    d[o + CG] = Math.round((s[4]! / count) * 256);
    d[o + CB] = Math.round((s[5]! / count) * 256);
    d[o + OBS] = AUTHORED_OBSERVATIONS;
    d[o + CONF] = 255 | AUTHORED;
    diff.after.push(record(chunk, slot));
    chunk.revision = revision;
  }
  return { chunks: diffs, voxels: sums.size };
}

/** Applies an edit operation to the grid (the erased region itself is carved by the caller). */
export function applyEditOp(grid: VoxelGrid, op: EditOp): EditDiff {
  switch (op.op) {
    case 'erase':
      return eraseRegion(grid, op.region);
    case 'recolor':
      return recolorRegion(grid, op.region, op.color);
    case 'insert':
      return insertPoints(grid, objectSurfacePoints(op.object, grid.voxelSizeM / 2));
  }
}

const sameRecord = (a: Uint16Array | undefined, b: Uint16Array | undefined): boolean => {
  if (a === undefined || b === undefined) return a === b;
  for (let i = 0; i < STRIDE; i++) if (a[i] !== b[i]) return false;
  return true;
};

/** What undoing or redoing a diff did: voxels restored, and voxels left alone because a later edit changed them. */
export interface DiffResult {
  readonly applied: number;
  readonly conflicts: number;
}

/**
 * Undoes (`direction` 'undo': after → before) or redoes ('redo': before → after) an edit's diff.
 * A voxel is changed only where it still holds what the edit left (or found): one another edit
 * changed since wins. Free-space cells the edit marked are unmarked on undo (marked on redo).
 */
export function applyDiff(grid: VoxelGrid, diff: EditDiff, direction: 'undo' | 'redo'): DiffResult {
  let applied = 0;
  let conflicts = 0;
  const revision = ++grid.revision;
  for (const [key, cd] of diff.chunks) {
    const from = direction === 'undo' ? cd.after : cd.before;
    const to = direction === 'undo' ? cd.before : cd.after;
    let chunk = grid.getChunk(key);
    if (!chunk) {
      if (to.every((r) => r === undefined) && cd.freed[0] === 0 && cd.freed[1] === 0) continue;
      chunk = grid.ensureChunk(cd.cx, cd.cy, cd.cz);
    }
    const remove = new Set<number>();
    for (let i = 0; i < cd.keys.length; i++) {
      const slot = chunk.find(cd.keys[i]!);
      const now = slot >= 0 ? record(chunk, slot) : undefined;
      if (!sameRecord(now, from[i])) {
        conflicts++;
        continue;
      }
      applied++;
      const target = to[i];
      if (target === undefined) remove.add(slot);
      else {
        const at = chunk.findOrInsert(cd.keys[i]!); // may grow chunk.data: read it after
        chunk.data.set(target, at * STRIDE);
      }
    }
    if (remove.size > 0) chunk.removeWhere((s) => remove.has(s));
    for (let cell = 0; cell < 64; cell++) {
      if ((cd.freed[cell >> 5]! & (1 << (cell & 31))) === 0) continue;
      if (direction === 'undo') chunk.unmarkFree(cell);
      else chunk.markFree(cell);
    }
    chunk.revision = revision;
  }
  return { applied, conflicts };
}
