import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../server/net/rateLimiter.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import {
  decodeFrame,
  downsampleDepthMm,
  encodeFrame,
  ImageFormat,
} from '../../../shared/protocol/frameCodec.ts';

describe('binary frame codec', () => {
  it('round-trips header, image and depth exactly', () => {
    const depth = new Float32Array(8 * 4).map((_v, i) => (i % 5 === 0 ? 0 : 0.5 + i * 0.25));
    const d = downsampleDepthMm(depth, 8, 4, 2);
    expect([d.width, d.height]).toEqual([4, 2]);
    expect(d.depthMm[0]).toBe(Math.round(depth[9]! * 1000));
    const header = {
      frameId: 7,
      clipId: 3,
      rotation: [1, 0, 0, 0, 1, 0, 0, 0, 1],
      position: [1.5, -2, 3.25],
      intrinsics: { fx: 300, fy: 300, cx: 3.5, cy: 1.5, width: 8, height: 4 },
      inputSeq: 42,
      clientTimeMs: 1234.5,
      serverTimeMs: 99.25,
      timings: { conditionMs: 1, generateMs: 2, updateMs: 3, encodeMs: 4 },
    };
    const image = new Uint8Array([0xff, 0xd8, 1, 2, 3]);
    const bytes = encodeFrame({
      header,
      imageFormat: ImageFormat.Jpeg,
      image,
      depthWidth: 4,
      depthHeight: 2,
      depthMm: d.depthMm,
    });
    const back = decodeFrame(bytes);
    expect(back.header).toEqual(header);
    expect([...back.image]).toEqual([...image]);
    expect([...back.depthMm]).toEqual([...d.depthMm]);
    expect(() => decodeFrame(bytes.subarray(0, bytes.length - 1))).toThrow(SpatiaError);
    const bad = bytes.slice();
    bad[0] = 0;
    expect(() => decodeFrame(bad)).toThrow(/magic/);
  });

  it('the rate limiter allows the burst, then the sustained rate', () => {
    const r = new RateLimiter(10, 5, 0);
    const allowed = Array.from({ length: 8 }, () => r.take(0)).filter(Boolean).length;
    expect(allowed).toBe(5);
    expect(r.take(50)).toBe(false); // 0.5 token
    expect(r.take(100)).toBe(true); // 1 token after 100 ms at 10/s
  });
});
