import sharp from 'sharp';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import { downsampleDepthMm, encodeFrame, ImageFormat } from '../../shared/protocol/frameCodec.ts';
import { type Avatar, compositeAvatars } from './avatars.ts';
import type { DirectedFrame } from './director.ts';

/** Depth goes out at half the frame's resolution in each direction (enough to reproject). */
const DEPTH_DOWNSAMPLE = 2;

export interface FrameStamp {
  /** The player's running frame number. */
  readonly frameId: number;
  /** The last input applied before the clip was planned, and its client clock (echoed for latency). */
  readonly inputSeq: number;
  readonly clientTimeMs: number;
}

/**
 * A generated frame as it goes on the wire (shared/protocol/frameCodec.ts): other players drawn in
 * as avatars (after the memory update, so they never enter the memory), JPEG, 16-bit depth.
 * Returns the wire bytes and the JPEG (what a recording keeps).
 */
export async function encodeWireFrame(
  f: DirectedFrame,
  k: Intrinsics,
  avatars: readonly Avatar[],
  jpegQuality: number,
  stamp: FrameStamp,
): Promise<{ bytes: Uint8Array; jpeg: Uint8Array }> {
  const t0 = performance.now();
  const rgb = avatars.length > 0 ? f.rgb.slice() : f.rgb;
  compositeAvatars(rgb, f.depth, f.pose, k, avatars);
  const jpeg = await sharp(rgb, { raw: { width: k.width, height: k.height, channels: 3 } })
    .jpeg({ quality: jpegQuality })
    .toBuffer();
  const depth = f.depth
    ? downsampleDepthMm(f.depth, k.width, k.height, DEPTH_DOWNSAMPLE)
    : {
        depthMm: new Uint16Array((k.width / DEPTH_DOWNSAMPLE) * (k.height / DEPTH_DOWNSAMPLE)),
        width: k.width / DEPTH_DOWNSAMPLE,
        height: k.height / DEPTH_DOWNSAMPLE,
      };
  const image = new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
  const bytes = encodeFrame({
    header: {
      frameId: stamp.frameId,
      clipId: f.clipId,
      rotation: [...f.pose.rotation],
      position: [...f.pose.position],
      intrinsics: { ...k },
      inputSeq: stamp.inputSeq,
      clientTimeMs: stamp.clientTimeMs,
      serverTimeMs: performance.now(),
      timings: { ...f.timings, encodeMs: performance.now() - t0 },
    },
    imageFormat: ImageFormat.Jpeg,
    image,
    depthWidth: depth.width,
    depthHeight: depth.height,
    depthMm: depth.depthMm,
  });
  return { bytes, jpeg: image };
}
