import { BinaryReader, BinaryWriter } from '../codec/binaryWriter.ts';
import { SpatiaError } from '../errors.ts';

/**
 * A generated frame on the wire: a fixed header, the image (JPEG or WebP) and 16-bit depth
 * (millimetres, 0 = unknown) at reduced resolution, enough to reproject the frame on the client.
 */
const FRAME_MAGIC = 0x53504652; // "SPFR"
const FRAME_VERSION = 1;

export const ImageFormat = { Jpeg: 1, Webp: 2 } as const;
export type ImageFormat = (typeof ImageFormat)[keyof typeof ImageFormat];

interface FrameTimings {
  readonly conditionMs: number;
  readonly generateMs: number;
  readonly updateMs: number;
  readonly encodeMs: number;
}

interface FrameHeader {
  readonly frameId: number;
  readonly clipId: number;
  /** Camera-to-world, row-major rotation then position (OpenCV camera axes). */
  readonly rotation: readonly number[];
  readonly position: readonly number[];
  readonly intrinsics: { fx: number; fy: number; cx: number; cy: number; width: number; height: number };
  /** Last input applied before this frame's pose was taken, and its client clock. */
  readonly inputSeq: number;
  readonly clientTimeMs: number;
  readonly serverTimeMs: number;
  readonly timings: FrameTimings;
}

export interface EncodedFrame {
  readonly header: FrameHeader;
  readonly imageFormat: ImageFormat;
  readonly image: Uint8Array;
  readonly depthWidth: number;
  readonly depthHeight: number;
  /** Millimetres, row-major. */
  readonly depthMm: Uint16Array;
}

export function encodeFrame(f: EncodedFrame): Uint8Array {
  const w = new BinaryWriter();
  const h = f.header;
  w.u32(FRAME_MAGIC);
  w.u8(FRAME_VERSION);
  w.u32(h.frameId);
  w.u32(h.clipId);
  for (let i = 0; i < 9; i++) w.f64(h.rotation[i]!);
  for (let i = 0; i < 3; i++) w.f64(h.position[i]!);
  const k = h.intrinsics;
  for (const v of [k.fx, k.fy, k.cx, k.cy]) w.f64(v);
  w.u32(k.width);
  w.u32(k.height);
  w.u32(h.inputSeq);
  w.f64(h.clientTimeMs);
  w.f64(h.serverTimeMs);
  const t = h.timings;
  for (const v of [t.conditionMs, t.generateMs, t.updateMs, t.encodeMs]) w.f64(v);
  w.u8(f.imageFormat);
  w.u32(f.image.length);
  w.bytes(f.image);
  w.u32(f.depthWidth);
  w.u32(f.depthHeight);
  w.bytes(new Uint8Array(f.depthMm.buffer, f.depthMm.byteOffset, f.depthMm.byteLength));
  return w.finish();
}

export function decodeFrame(bytes: Uint8Array): EncodedFrame {
  const r = new BinaryReader(bytes, 'INVALID_ARGUMENT', 'frame');
  if (r.u32() !== FRAME_MAGIC) throw new SpatiaError('INVALID_ARGUMENT', 'not a Spatia frame (bad magic)');
  const version = r.u8();
  if (version !== FRAME_VERSION)
    throw new SpatiaError('INVALID_ARGUMENT', `frame version ${version}, this build reads ${FRAME_VERSION}`);
  const frameId = r.u32();
  const clipId = r.u32();
  const rotation = Array.from({ length: 9 }, () => r.f64());
  const position = Array.from({ length: 3 }, () => r.f64());
  const [fx, fy, cx, cy] = [r.f64(), r.f64(), r.f64(), r.f64()] as [number, number, number, number];
  const width = r.u32();
  const height = r.u32();
  const inputSeq = r.u32();
  const clientTimeMs = r.f64();
  const serverTimeMs = r.f64();
  const [conditionMs, generateMs, updateMs, encodeMs] = [r.f64(), r.f64(), r.f64(), r.f64()] as [
    number,
    number,
    number,
    number,
  ];
  const imageFormat = r.u8() as ImageFormat;
  const image = r.bytes(r.u32()).slice();
  const depthWidth = r.u32();
  const depthHeight = r.u32();
  const depthBytes = r.bytes(depthWidth * depthHeight * 2).slice();
  return {
    header: {
      frameId,
      clipId,
      rotation,
      position,
      intrinsics: { fx, fy, cx, cy, width, height },
      inputSeq,
      clientTimeMs,
      serverTimeMs,
      timings: { conditionMs, generateMs, updateMs, encodeMs },
    },
    imageFormat,
    image,
    depthWidth,
    depthHeight,
    depthMm: new Uint16Array(depthBytes.buffer),
  };
}

/** Metres → millimetres at 1/`factor` resolution (nearest sample), clamped to 65.535 m. */
export function downsampleDepthMm(
  depth: Float32Array,
  width: number,
  height: number,
  factor: number,
): { depthMm: Uint16Array; width: number; height: number } {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const out = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = (y * factor + (factor >> 1)) * width;
    for (let x = 0; x < w; x++) {
      const d = depth[row + x * factor + (factor >> 1)]!;
      out[y * w + x] = d > 0 ? Math.min(65535, Math.round(d * 1000)) : 0;
    }
  }
  return { depthMm: out, width: w, height: h };
}
