import { describe, expect, it } from 'vitest';
import { SpatiaError } from '../../../shared/errors.ts';
import {
  decodeMirrorBatch,
  encodeMirrorBatch,
  MIRROR_BATCH_HEADER_BYTES,
  type MirrorBatch,
  mirrorChunkBytes,
} from '../../../shared/protocol/mirrorCodec.ts';

const batch: MirrorBatch = {
  seq: 7,
  voxelSizeM: 0.02,
  chunkVoxels: 32,
  chunks: [
    {
      cx: -3,
      cy: 0,
      cz: 65535,
      revision: 42,
      level: 1,
      points: new Uint8Array([1, 2, 3, 200, 100, 50, 4, 5, 6, 7, 8, 9]),
    },
    { cx: 1, cy: -1, cz: 0, revision: 43, level: 0, points: new Uint8Array(0) },
  ],
};

describe('mirror batch codec', () => {
  it('round-trips a batch, and its size is the documented header and record sizes', () => {
    const bytes = encodeMirrorBatch(batch);
    expect(bytes.length).toBe(MIRROR_BATCH_HEADER_BYTES + mirrorChunkBytes(2) + mirrorChunkBytes(0));
    const back = decodeMirrorBatch(bytes);
    expect(back.seq).toBe(7);
    expect(back.voxelSizeM).toBe(0.02);
    expect(back.chunkVoxels).toBe(32);
    expect(back.chunks.map((c) => [c.cx, c.cy, c.cz, c.revision, c.level, [...c.points]])).toEqual(
      batch.chunks.map((c) => [c.cx, c.cy, c.cz, c.revision, c.level, [...c.points]]),
    );
  });

  it('refuses malformed batches with a reason: magic, version, truncation, trailing bytes, counts, levels', () => {
    const good = encodeMirrorBatch(batch);
    /** `mutate` edits a copy in place, or returns a replacement. */
    const bad = (mutate: (b: Uint8Array, v: DataView) => unknown, message: RegExp): void => {
      const copy = good.slice();
      const replaced = mutate(copy, new DataView(copy.buffer));
      const b = replaced instanceof Uint8Array ? replaced : copy;
      expect(() => decodeMirrorBatch(b)).toThrow(SpatiaError);
      expect(() => decodeMirrorBatch(b)).toThrow(message);
    };
    bad((_, v) => v.setUint8(0, 0), /bad magic/);
    bad((_, v) => v.setUint8(4, 9), /version 9/);
    bad((b) => b.subarray(0, b.length - 3), /truncated/);
    bad((b) => Uint8Array.from([...b, 0]), /trailing/);
    bad((_, v) => v.setFloat64(9, -1, true), /voxel size/);
    bad((_, v) => v.setUint8(17, 0), /chunk edge/);
    bad((_, v) => v.setUint32(18, 100_000, true), /chunks/);
    // First chunk's level and point count.
    bad((_, v) => v.setUint8(MIRROR_BATCH_HEADER_BYTES + 16, 9), /level 9/);
    bad((_, v) => v.setUint32(MIRROR_BATCH_HEADER_BYTES + 17, 40_000, true), /40000 points/);
    expect(() =>
      encodeMirrorBatch({ ...batch, chunks: [{ ...batch.chunks[0]!, points: new Uint8Array(5) }] }),
    ).toThrow(/6-byte/);
  });
});
