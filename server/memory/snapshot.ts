import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Mat3, Pose } from '../../shared/camera/pose.ts';
import { BinaryReader, BinaryWriter } from '../../shared/codec/binaryWriter.ts';
import { crc32 } from '../../shared/codec/crc32.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { type Keyframe, KeyframeStore } from './keyframes.ts';
import {
  AUTHORED,
  CHUNK_VOXELS,
  CONF,
  chunkKeyOf,
  KEY,
  localKeyOf,
  PX,
  PY,
  PZ,
  STRIDE,
  SUB_BITS,
  VoxelChunk,
} from './voxelChunk.ts';
import { VoxelGrid } from './voxelGrid.ts';

/**
 * Snapshot format v2 (little-endian), the memory's exact, complete state:
 *   magic "SPATIA-MEMORY-V2" (16 B) · f64 voxelSizeM · u32 chunkCount · chunks · u32 keyframeCount ·
 *   keyframes · u32 CRC-32 of everything before it.
 * chunk: i32 cx, cy, cz · u32 n | FREE_FLAG · u16 records[9n] (the VoxelChunk record layout) ·
 *   with FREE_FLAG: u32 free cells low, high (the chunk's known-free cells, see VoxelChunk.cells)
 * Version 1 is version 2 without free space (chunks never carry the flag); both are read.
 * keyframe: u32 id · f64 rotation[9] · f64 position[3] · f64 fx, fy, cx, cy · u32 width, height ·
 *   u32 sketchLen · u32 sketch[] · u32 cellCount · f64 cells[] · f32 weights[] · f64 voxelCount ·
 *   u8 hasImage · (u8 rgb[w·h·3] · f32 depth[w·h])
 */
const MAGIC = 'SPATIA-MEMORY-V2';
const MAGIC_V1 = 'SPATIA-MEMORY-V1';
/** Set in a chunk's voxel count when its free-space cells follow the records. */
const FREE_FLAG = 0x80000000;

export interface MemorySnapshot {
  readonly grid: VoxelGrid;
  readonly keyframes: KeyframeStore;
}

/** Appends one chunk's exact state. */
export function encodeChunk(w: BinaryWriter, c: VoxelChunk): void {
  w.i32(c.cx);
  w.i32(c.cy);
  w.i32(c.cz);
  const free = c.hasFreeSpace;
  w.u32((c.count | (free ? FREE_FLAG : 0)) >>> 0);
  w.bytes(c.data.subarray(0, c.count * STRIDE));
  if (free) {
    w.u32(c.cells[0]!);
    w.u32(c.cells[1]!);
  }
}

/** Reads one chunk written by `encodeChunk`, checking its contents are consistent. */
export function decodeChunk(r: BinaryReader): VoxelChunk {
  const cx = r.i32();
  const cy = r.i32();
  const cz = r.i32();
  const counted = r.u32();
  const n = (counted & ~FREE_FLAG) >>> 0;
  const max = CHUNK_VOXELS ** 3;
  if (n > max)
    throw new SpatiaError('SNAPSHOT_FORMAT', `chunk (${cx}, ${cy}, ${cz}) claims ${n} voxels (max ${max})`);
  if (Math.abs(cx) >= 65536 || Math.abs(cy) >= 65536 || Math.abs(cz) >= 65536) {
    throw new SpatiaError('SNAPSHOT_FORMAT', `chunk coordinates (${cx}, ${cy}, ${cz}) are out of range`);
  }
  const records = new Uint16Array(r.bytes(n * STRIDE * 2).buffer);
  const chunk = new VoxelChunk(chunkKeyOf(cx, cy, cz), cx, cy, cz, Math.max(1, n));
  for (let s = 0, o = 0; s < n; s++, o += STRIDE) {
    // The key must agree with the position, and each voxel appear once, or lookups would break.
    const key = localKeyOf(
      records[o + PX]! >> SUB_BITS,
      records[o + PY]! >> SUB_BITS,
      records[o + PZ]! >> SUB_BITS,
    );
    if (records[o + KEY] !== key || (records[o + CONF]! & ~AUTHORED) > 255) {
      throw new SpatiaError('SNAPSHOT_FORMAT', `chunk (${cx}, ${cy}, ${cz}) voxel ${s} is inconsistent`);
    }
    if (chunk.findOrInsert(key) !== s) {
      throw new SpatiaError('SNAPSHOT_FORMAT', `chunk (${cx}, ${cy}, ${cz}) has a duplicate voxel`);
    }
  }
  chunk.data.set(records);
  if (counted & FREE_FLAG) {
    const lo = r.u32();
    const hi = r.u32();
    // Free and occupied cells are disjoint: a voxel in a "free" cell means the bytes are damaged.
    if ((lo & chunk.cells[2]!) !== 0 || (hi & chunk.cells[3]!) !== 0)
      throw new SpatiaError('SNAPSHOT_FORMAT', `chunk (${cx}, ${cy}, ${cz}) has voxels in free space`);
    chunk.cells[0] = lo;
    chunk.cells[1] = hi;
  }
  return chunk;
}

/** Appends one keyframe's exact state (pose, intrinsics, signature, optional RGB-D image). */
export function encodeKeyframe(w: BinaryWriter, kf: Keyframe): void {
  w.u32(kf.id);
  for (const x of kf.pose.rotation) w.f64(x);
  for (const x of kf.pose.position) w.f64(x);
  const k = kf.intrinsics;
  w.f64(k.fx);
  w.f64(k.fy);
  w.f64(k.cx);
  w.f64(k.cy);
  w.u32(k.width);
  w.u32(k.height);
  const s = kf.signature;
  w.u32(s.sketch.length);
  w.bytes(s.sketch);
  w.u32(s.cells.length);
  w.bytes(s.cells);
  w.bytes(s.cellWeights);
  w.f64(s.voxelCount);
  w.u8(kf.image ? 1 : 0);
  if (kf.image) {
    w.bytes(kf.image.rgb);
    w.bytes(kf.image.depth);
  }
}

/** Reads one keyframe written by `encodeKeyframe`. */
/** The camera position of an encoded keyframe, read without decoding the rest. */
export function keyframeCameraPosition(r: BinaryReader): Vec3 {
  r.u32();
  for (let i = 0; i < 9; i++) r.f64();
  return [r.f64(), r.f64(), r.f64()];
}

export function decodeKeyframe(r: BinaryReader): Keyframe {
  const id = r.u32();
  const rot = Array.from({ length: 9 }, () => r.f64()) as unknown as Mat3;
  const position = [r.f64(), r.f64(), r.f64()] as const satisfies Vec3;
  const pose: Pose = { rotation: rot, position };
  const intrinsics: Intrinsics = {
    fx: r.f64(),
    fy: r.f64(),
    cx: r.f64(),
    cy: r.f64(),
    width: r.u32(),
    height: r.u32(),
  };
  const sketch = new Uint32Array(r.bytes(r.u32() * 4).slice().buffer);
  const cellCount = r.u32();
  const cells = new Float64Array(r.bytes(cellCount * 8).slice().buffer);
  const cellWeights = new Float32Array(r.bytes(cellCount * 4).slice().buffer);
  const voxelCount = r.f64();
  const hasImage = r.u8() === 1;
  const n = intrinsics.width * intrinsics.height;
  const image = hasImage
    ? {
        width: intrinsics.width,
        height: intrinsics.height,
        rgb: r.bytes(n * 3).slice(),
        depth: new Float32Array(r.bytes(n * 4).slice().buffer),
      }
    : undefined;
  return { id, pose, intrinsics, signature: { sketch, cells, cellWeights, voxelCount }, image };
}

/** The bytes before the chunks: magic, voxel size, chunk count. */
export function snapshotHead(voxelSizeM: number, chunkCount: number): Uint8Array {
  const w = new BinaryWriter();
  w.bytes(new TextEncoder().encode(MAGIC));
  w.f64(voxelSizeM);
  w.u32(chunkCount);
  return w.finish();
}

/** The bytes between the chunks and the keyframes: the keyframe count. */
export function snapshotKeyframeCount(count: number): Uint8Array {
  const w = new BinaryWriter();
  w.u32(count);
  return w.finish();
}

/**
 * A snapshot from its parts in order (head, each `encodeChunk`, keyframe count, each
 * `encodeKeyframe`): their concatenation and its CRC-32. The same bytes `saveSnapshot` writes for
 * the same state, so a snapshot can be stored as parts and put back together exactly.
 */
export function sealSnapshot(parts: readonly Uint8Array[]): Uint8Array {
  let length = 4;
  for (const p of parts) length += p.byteLength;
  const out = new Uint8Array(length);
  let o = 0;
  let crc = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
    crc = crc32(p, crc);
  }
  new DataView(out.buffer).setUint32(o, crc, true);
  return out;
}

/** Serialises the grid and keyframes. O(voxels + keyframe bytes). */
export function saveSnapshot(grid: VoxelGrid, keyframes: KeyframeStore = new KeyframeStore()): Uint8Array {
  const chunks = [...grid.chunks()].filter((c) => !c.isEmpty);
  const parts: Uint8Array[] = [snapshotHead(grid.voxelSizeM, chunks.length)];
  const w = new BinaryWriter();
  for (const c of chunks) encodeChunk(w, c);
  const kfs = keyframes.all();
  parts.push(w.finish(), snapshotKeyframeCount(kfs.length));
  const k = new BinaryWriter();
  for (const kf of kfs) encodeKeyframe(k, kf);
  parts.push(k.finish());
  return sealSnapshot(parts);
}

/** Restores a snapshot. Throws SNAPSHOT_FORMAT on a wrong magic, truncation or a checksum mismatch. */
export function loadSnapshot(bytes: Uint8Array): MemorySnapshot {
  if (!(bytes instanceof Uint8Array) || bytes.length < MAGIC.length + 4) {
    throw new SpatiaError('SNAPSHOT_FORMAT', 'snapshot is too short to be a Spatia memory snapshot');
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC && magic !== MAGIC_V1)
    throw new SpatiaError('SNAPSHOT_FORMAT', `not a Spatia memory snapshot (magic "${magic}")`);
  const body = bytes.subarray(0, bytes.length - 4);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + body.length, 4).getUint32(0, true);
  if (crc32(body) !== stored) {
    throw new SpatiaError(
      'SNAPSHOT_FORMAT',
      'snapshot checksum mismatch: the file is truncated or corrupted',
    );
  }
  const r = new BinaryReader(body, 'SNAPSHOT_FORMAT', 'snapshot');
  r.bytes(MAGIC.length);
  const grid = new VoxelGrid(r.f64());
  const chunkCount = r.u32();
  for (let i = 0; i < chunkCount; i++) grid.putChunk(decodeChunk(r));
  const keyframes = new KeyframeStore();
  const kfCount = r.u32();
  for (let i = 0; i < kfCount; i++) keyframes.add(decodeKeyframe(r));

  if (r.remaining !== 0)
    throw new SpatiaError('SNAPSHOT_FORMAT', `snapshot has ${r.remaining} unexpected trailing bytes`);
  return { grid, keyframes };
}
