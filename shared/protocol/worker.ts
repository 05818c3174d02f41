import { z } from 'zod';

/**
 * The remote-worker protocol (docs/remote-workers.md): a GPU worker process in any language
 * connects to the server's socket.io namespace `/workers` at the path `/worker-socket.io` (an
 * endpoint of its own, apart from the players': its messages carry whole frames), says hello with
 * what its model generates, then receives clip requests and streams frames back. Binary buffers
 * travel as socket.io binary attachments (little-endian typed-array bytes).
 */
export const WORKER_PROTOCOL = 'spatia-worker/2';
export const WORKER_NAMESPACE = '/workers';
/** The socket.io path of the worker endpoint (players use socket.io's default `/socket.io`). */
export const WORKER_PATH = '/worker-socket.io';

export const workerHelloSchema = z.strictObject({
  protocol: z.literal(WORKER_PROTOCOL),
  name: z.string().min(1).max(64),
  token: z.string().max(200).optional(),
  model: z.strictObject({
    name: z.string().min(1).max(64),
    width: z.number().int().min(8).max(4096),
    height: z.number().int().min(8).max(4096),
    fps: z.number().positive().max(240),
    framesPerClip: z.number().int().min(1).max(256),
    outputsDepth: z.boolean(),
    outputsDynamicMask: z.boolean(),
    device: z.string().max(64),
  }),
});
export type WorkerHello = z.infer<typeof workerHelloSchema>;

/** A clip request on the wire: the ClipRequest with typed arrays as bytes. */
export interface WireClipRequest {
  readonly requestId: string;
  readonly clipId: number;
  readonly poses: { rotation: number[]; position: number[] }[];
  readonly intrinsics: { fx: number; fy: number; cx: number; cy: number; width: number; height: number };
  /** depth and freeDepth: little-endian float32 bytes (freeDepth absent from older servers). */
  readonly memoryViews: {
    rgb: Uint8Array;
    depth: Uint8Array;
    coverage: Uint8Array;
    freeDepth?: Uint8Array;
  }[];
  readonly references: WireConditioningFrame[];
  readonly preceding: WireConditioningFrame[];
  readonly prompt: string;
  readonly seed: number;
  /** The world's seed (ClipRequest.worldSeed); absent from older servers (0). */
  readonly worldSeed?: number;
  readonly timeS: number;
  /** The queue ticket this clip answers (a worker that took a queued job); absent for pushed clips. */
  readonly ticket?: string;
}

export interface WireConditioningFrame {
  readonly pose: { rotation: number[]; position: number[] };
  readonly intrinsics: { fx: number; fy: number; cx: number; cy: number; width: number; height: number };
  readonly rgb: Uint8Array;
  /** Float32 bytes, or absent. */
  readonly depth?: Uint8Array;
}

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be binary');
export const wireFrameSchema = z.strictObject({
  requestId: z.string().max(64),
  index: z.number().int().min(0).max(255),
  rgb: bytes,
  depth: bytes.optional(),
  dynamicMask: bytes.optional(),
  generateMs: z.number().min(0).max(600_000),
});
export type WireFrame = z.infer<typeof wireFrameSchema>;

export interface WorkerToServerEvents {
  hello: (hello: WorkerHello, ack: (r: { ok: boolean; error?: string }) => void) => void;
  frame: (frame: WireFrame) => void;
  done: (r: { requestId: string }) => void;
  failed: (r: { requestId: string; message: string }) => void;
  /**
   * A worker that took a queued clip job (docs/remote-workers.md, "Through a queue") claims its
   * ticket; ok: the clip follows on this connection with the ticket; not ok: someone else served it.
   */
  take: (r: { ticket: string }, ack: (r: { ok: boolean; error?: string }) => void) => void;
}

export interface ServerToWorkerEvents {
  clip: (req: WireClipRequest) => void;
  cancel: (r: { requestId: string }) => void;
}

/** Bytes of a typed array (a view, no copy). */
export const bytesOf = (a: ArrayBufferView): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A Float32Array from little-endian bytes (copied when unaligned). */
export function float32Of(b: Uint8Array): Float32Array {
  if (b.byteOffset % 4 === 0 && b.byteLength % 4 === 0)
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  // A fresh copy: `slice` of a Node Buffer (what socket.io delivers) is a view into a shared pool.
  return new Float32Array(new Uint8Array(b).buffer);
}

/** The BullMQ queue clustered nodes put clip jobs on, and what a job holds (no conditioning: that goes over the stream). */
export const CLIP_QUEUE = 'spatia-clips';
export interface ClipJobData {
  /** Claimed with `take` on the node's worker endpoint. */
  readonly ticket: string;
  /** The node's URL: its worker endpoint is WORKER_NAMESPACE at WORKER_PATH there. */
  readonly node: string;
  readonly clipId: number;
}
