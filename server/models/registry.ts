import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { SpatiaError } from '../../shared/errors.ts';
import { type RemotePoolOptions, RemoteWorkerPool } from '../remote/workerPool.ts';
import { createLocalModel, type LocalModelSettings } from './localModels.ts';
import { ThreadedModel } from './threaded/threadedModel.ts';
import { MODEL_DEFAULTS, type WorldModel } from './worldModel.ts';

/** The world models a run can name with `--model`. */
export const MODEL_NAMES = ['procedural', 'scene', 'remote', 'onnx'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelSettings extends LocalModelSettings {
  /** The `onnx` model's file (default: the bundled assets/models/spatia-tiny.onnx). */
  readonly onnxPath?: string;
  /** Run a local model in this many worker threads (0 or absent: in this thread). */
  readonly threads?: number;
  /** `remote`: the token workers must present (absent: any worker that reaches the server). */
  readonly workerToken?: string;
  /** `remote`: a worker silent this long during a clip is dropped. */
  readonly stallMs?: number;
  /** `remote`: where the pool logs workers coming and going. */
  readonly logger?: Logger;
  /** `remote`, clustered: clips go through this queue (see RemotePoolOptions.queue). */
  readonly clipQueue?: RemotePoolOptions['queue'];
}

/** The bundled reference ONNX model (trained by tools/train/train.py). */
export const DEFAULT_ONNX_MODEL = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../assets/models/spatia-tiny.onnx',
);

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/**
 * Model threads when none are asked for: the cores minus one for the main thread (memory, sockets,
 * encoding) and one for the rest of the process (GC, libuv, the store's writer) and the OS, at most
 * 8; only local models run in threads. On 2 cores that is 0: there a model thread measured slower
 * for players sharing a world, whose clips take turns under the invention lock (docs/operations.md).
 */
export function autoModelThreads(name: ModelName, cores = availableParallelism()): number {
  if (name !== 'procedural') return 0;
  return Math.max(0, Math.min(8, cores - 2));
}

/**
 * Any model by name, as a run configures it: local models (in worker threads when `threads` > 0),
 * the ONNX model (loaded on demand: onnxruntime's native library is not loaded for the others) and
 * the pool of remote workers.
 */
export async function loadModel(name: string, settings: ModelSettings = {}): Promise<WorldModel> {
  if (!isModelName(name))
    throw new SpatiaError('UNKNOWN_MODEL', `unknown model "${name}" (known: ${MODEL_NAMES.join(', ')})`);
  const threads = settings.threads ?? 0;
  if (threads > 0 && name !== 'procedural' && name !== 'scene')
    throw new SpatiaError('INVALID_ARGUMENT', `only local models run in model threads, not "${name}"`);
  switch (name) {
    case 'onnx': {
      const { OnnxModel } = await import('./onnx/onnxModel.ts');
      return OnnxModel.load(settings.onnxPath ?? DEFAULT_ONNX_MODEL, {
        framesPerClip: settings.framesPerClip,
      });
    }
    case 'remote':
      if (!settings.logger) throw new SpatiaError('INVALID_ARGUMENT', 'the "remote" model needs a logger');
      return new RemoteWorkerPool({
        width: settings.width ?? MODEL_DEFAULTS.width,
        height: settings.height ?? MODEL_DEFAULTS.height,
        fps: MODEL_DEFAULTS.fps,
        framesPerClip: settings.framesPerClip ?? MODEL_DEFAULTS.framesPerClip,
        token: settings.workerToken,
        stallMs: settings.stallMs,
        queue: settings.clipQueue,
        logger: settings.logger,
      });
    case 'procedural':
    case 'scene': {
      const { width, height, framesPerClip, scene } = settings;
      if (threads === 0) return createLocalModel(name, { width, height, framesPerClip, scene });
      // The procedural model ignores a scene (it seeds the world, not the model); the oracle needs it.
      if (name === 'scene')
        throw new SpatiaError('INVALID_ARGUMENT', 'the "scene" model does not run in model threads');
      return new ThreadedModel(name, { width, height, framesPerClip }, threads);
    }
  }
}
