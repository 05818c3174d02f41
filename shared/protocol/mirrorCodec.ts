import { BinaryReader, BinaryWriter } from '../codec/binaryWriter.ts';
import { SpatiaError } from '../errors.ts';

/**
 * The memory mirror on the wire: the server streams the voxel chunks around a player so the
 * client can draw the world itself between (and without) generated frames. One message carries a
 * batch of chunks, each at one level of detail, as compact points: a position quantised inside the
 * chunk (MIRROR_POSITION_STEPS per chunk edge) and an 8-bit colour. A chunk with no points removes
 * it from the client.
 */
const MIRROR_MAGIC = 0x534d4952; // "SMIR"
const MIRROR_VERSION = 1;

/** The server streams the chunks whose centre lies within this distance of the player, metres. */
export const MIRROR_RADIUS_M = 24;
/** The client keeps chunks up to this far (past the stream's radius, so walking back and forth does not resend). */
export const MIRROR_KEEP_M = 40;

/** Position steps per chunk edge: at 2 cm voxels a chunk is 64 cm, a step 2.5 mm. */
export const MIRROR_POSITION_STEPS = 256;
/** World coordinate of a point on one axis: chunk coordinate `cell`, quantised step `q`, chunk edge `sizeM`. */
export const mirrorPointCoord = (cell: number, q: number, sizeM: number): number =>
  (cell + (q + 0.5) / MIRROR_POSITION_STEPS) * sizeM;
/** Bytes per point: x, y, z (u8 steps inside the chunk), r, g, b. */
export const MIRROR_POINT_BYTES = 6;
/** Bytes of a chunk's header in a batch: cx, cy, cz (i32), revision (u32), level (u8), count (u32). */
const MIRROR_CHUNK_HEADER_BYTES = 21;
/** Bytes of a batch's header: magic, version, seq, voxel size, chunk edge, chunk count. */
export const MIRROR_BATCH_HEADER_BYTES = 22;
/** Coarsest level of detail a chunk may be sent at (a cell is 2^level voxels per edge). */
const MAX_MIRROR_LEVEL = 5;
/** Largest chunk edge a batch may declare, voxels. */
const MAX_CHUNK_VOXELS = 64;
/** Most chunks in one batch (the server sends far fewer; a decoder refuses more). */
const MAX_BATCH_CHUNKS = 4096;

export interface MirrorChunk {
  /** Integer chunk coordinates (a chunk spans [c, c + 1) × chunk edge per axis). */
  readonly cx: number;
  readonly cy: number;
  readonly cz: number;
  /** The server's revision of the chunk when it was packed (grows with every change). */
  readonly revision: number;
  /** Level of detail: each point stands for a cell of 2^level voxels per edge. */
  readonly level: number;
  /** Points, MIRROR_POINT_BYTES each; empty: the chunk is gone. */
  readonly points: Uint8Array;
}

export interface MirrorBatch {
  /** Acknowledged by the client with `mirrorAck {seq}`. */
  readonly seq: number;
  readonly voxelSizeM: number;
  /** Voxels per chunk edge (the memory's chunking; a chunk spans chunkVoxels × voxelSizeM). */
  readonly chunkVoxels: number;
  readonly chunks: readonly MirrorChunk[];
}

/** Bytes a chunk of `points` points takes in a batch. */
export const mirrorChunkBytes = (points: number): number =>
  MIRROR_CHUNK_HEADER_BYTES + points * MIRROR_POINT_BYTES;

export function encodeMirrorBatch(b: MirrorBatch): Uint8Array {
  const w = new BinaryWriter();
  w.u32(MIRROR_MAGIC);
  w.u8(MIRROR_VERSION);
  w.u32(b.seq);
  w.f64(b.voxelSizeM);
  w.u8(b.chunkVoxels);
  w.u32(b.chunks.length);
  for (const c of b.chunks) {
    if (c.points.length % MIRROR_POINT_BYTES !== 0)
      throw new SpatiaError('INVALID_ARGUMENT', 'mirror chunk points must be whole 6-byte records');
    w.i32(c.cx);
    w.i32(c.cy);
    w.i32(c.cz);
    w.u32(c.revision);
    w.u8(c.level);
    w.u32(c.points.length / MIRROR_POINT_BYTES);
    w.bytes(c.points);
  }
  return w.finish();
}

/** Decodes a batch; throws INVALID_ARGUMENT on anything malformed. Point arrays are copies. */
export function decodeMirrorBatch(bytes: Uint8Array): MirrorBatch {
  const r = new BinaryReader(bytes, 'INVALID_ARGUMENT', 'mirror batch');
  if (r.u32() !== MIRROR_MAGIC)
    throw new SpatiaError('INVALID_ARGUMENT', 'not a Spatia mirror batch (bad magic)');
  const version = r.u8();
  if (version !== MIRROR_VERSION)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `mirror version ${version}, this build reads ${MIRROR_VERSION}`,
    );
  const seq = r.u32();
  const voxelSizeM = r.f64();
  if (!(voxelSizeM > 0 && voxelSizeM < 100))
    throw new SpatiaError('INVALID_ARGUMENT', `mirror voxel size ${voxelSizeM} m is out of range`);
  const chunkVoxels = r.u8();
  if (chunkVoxels < 1 || chunkVoxels > MAX_CHUNK_VOXELS)
    throw new SpatiaError('INVALID_ARGUMENT', `mirror chunk edge ${chunkVoxels} voxels is out of range`);
  const n = r.u32();
  if (n > MAX_BATCH_CHUNKS)
    throw new SpatiaError('INVALID_ARGUMENT', `mirror batch of ${n} chunks (at most ${MAX_BATCH_CHUNKS})`);
  const chunks: MirrorChunk[] = [];
  for (let i = 0; i < n; i++) {
    const cx = r.i32();
    const cy = r.i32();
    const cz = r.i32();
    const revision = r.u32();
    const level = r.u8();
    const count = r.u32();
    if (level > MAX_MIRROR_LEVEL || count > chunkVoxels ** 3)
      throw new SpatiaError('INVALID_ARGUMENT', `mirror chunk ${i}: level ${level}, ${count} points`);
    chunks.push({ cx, cy, cz, revision, level, points: r.bytes(count * MIRROR_POINT_BYTES) });
  }
  if (r.remaining !== 0) throw new SpatiaError('INVALID_ARGUMENT', 'mirror batch has trailing bytes');
  return { seq, voxelSizeM, chunkVoxels, chunks };
}
