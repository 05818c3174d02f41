import type { ClipRequest, ConditioningFrame, GeneratedFrame, MemoryViewImage } from '../worldModel.ts';

/**
 * Images cross to model threads in SharedArrayBuffers: posting one shares it instead of copying
 * it, and a keyframe or preceding frame that goes to many clips is copied into shared memory once
 * (the cache is keyed by the array, so arrays in a request must not change afterwards: the model
 * contract already treats them as immutable).
 */
const sharedCopies = new WeakMap<Uint8Array | Float32Array, Uint8Array | Float32Array>();

function shared<T extends Uint8Array | Float32Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  let copy = sharedCopies.get(a) as T | undefined;
  if (!copy) {
    const buffer = new SharedArrayBuffer(a.byteLength);
    copy = (a instanceof Uint8Array ? new Uint8Array(buffer) : new Float32Array(buffer)) as T;
    copy.set(a);
    sharedCopies.set(a, copy);
  }
  return copy;
}

const sharedConditioning = (f: ConditioningFrame): ConditioningFrame => ({
  pose: f.pose,
  intrinsics: f.intrinsics,
  rgb: shared(f.rgb),
  depth: f.depth && shared(f.depth),
});

/**
 * The request as a model thread receives it: exactly the contract's fields, images shared. A memory
 * view object may carry more than MemoryViewImage (the renderer's voxel references and chunks):
 * those must not be cloned into the message.
 */
export function sharedRequest(req: Omit<ClipRequest, 'signal'>): Omit<ClipRequest, 'signal'> {
  return {
    clipId: req.clipId,
    poses: req.poses,
    intrinsics: req.intrinsics,
    memoryViews: req.memoryViews.map(
      (v): MemoryViewImage => ({
        rgb: shared(v.rgb),
        depth: shared(v.depth),
        coverage: shared(v.coverage),
        freeDepth: v.freeDepth && shared(v.freeDepth),
      }),
    ),
    references: req.references.map(sharedConditioning),
    preceding: req.preceding.map(sharedConditioning),
    prompt: req.prompt,
    seed: req.seed,
    ...(req.worldSeed === undefined ? {} : { worldSeed: req.worldSeed }),
    timeS: req.timeS,
  };
}

/** A generated frame in shared memory, so that it can go back to a model thread as conditioning for free. */
export function sharedFrame(f: GeneratedFrame): GeneratedFrame {
  return {
    index: f.index,
    rgb: shared(f.rgb),
    depth: f.depth && shared(f.depth),
    dynamicMask: f.dynamicMask && shared(f.dynamicMask),
    generateMs: f.generateMs,
  };
}
