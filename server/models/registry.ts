import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpatiaError } from '../../shared/errors.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { ProceduralModel } from './procedural/proceduralModel.ts';
import { SceneModel } from './sceneModel.ts';
import type { WorldModel } from './worldModel.ts';

/** The world models a run can name with `--model`. */
export const MODEL_NAMES = ['procedural', 'scene', 'remote', 'onnx'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelSettings {
  readonly width?: number;
  readonly height?: number;
  readonly framesPerClip?: number;
  /** Required by the `scene` oracle: the scene it renders. */
  readonly scene?: Scene;
  /** The `onnx` model's file (default: the bundled assets/models/spatia-tiny.onnx). */
  readonly onnxPath?: string;
}

/** The bundled reference ONNX model (trained by tools/train/train.py). */
export const DEFAULT_ONNX_MODEL = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../assets/models/spatia-tiny.onnx',
);

/** Any model by name, including those that load asynchronously (`onnx`). */
export async function loadModel(name: string, settings: ModelSettings = {}): Promise<WorldModel> {
  if (name === 'onnx') {
    // Loaded on demand: onnxruntime's native library is not needed (nor loaded) for the other models.
    const { OnnxModel } = await import('./onnx/onnxModel.ts');
    return OnnxModel.load(settings.onnxPath ?? DEFAULT_ONNX_MODEL, { framesPerClip: settings.framesPerClip });
  }
  return createModel(name, settings);
}

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/** A fresh model by name; unknown names and missing settings are clear errors. */
export function createModel(name: string, settings: ModelSettings = {}): WorldModel {
  if (!isModelName(name))
    throw new SpatiaError('UNKNOWN_MODEL', `unknown model "${name}" (known: ${MODEL_NAMES.join(', ')})`);
  switch (name) {
    case 'procedural':
      return new ProceduralModel(settings);
    case 'remote':
      throw new SpatiaError(
        'INVALID_ARGUMENT',
        'the "remote" model is served by worker processes connected to a running server (npm start -- --model remote)',
      );
    case 'onnx':
      throw new SpatiaError('INVALID_ARGUMENT', 'the "onnx" model loads asynchronously: use loadModel()');
    case 'scene':
      if (!settings.scene)
        throw new SpatiaError('INVALID_ARGUMENT', 'the "scene" model needs a scene to render');
      return new SceneModel(settings.scene, settings);
  }
}
