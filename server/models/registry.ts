import { SpatiaError } from '../../shared/errors.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { ProceduralModel } from './procedural/proceduralModel.ts';
import { SceneModel } from './sceneModel.ts';
import type { WorldModel } from './worldModel.ts';

/** The world models a run can name with `--model`. */
export const MODEL_NAMES = ['procedural', 'scene', 'remote'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelSettings {
  readonly width?: number;
  readonly height?: number;
  readonly framesPerClip?: number;
  /** Required by the `scene` oracle: the scene it renders. */
  readonly scene?: Scene;
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
    case 'scene':
      if (!settings.scene)
        throw new SpatiaError('INVALID_ARGUMENT', 'the "scene" model needs a scene to render');
      return new SceneModel(settings.scene, settings);
  }
}
