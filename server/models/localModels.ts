import { SpatiaError } from '../../shared/errors.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { ProceduralModel } from './procedural/proceduralModel.ts';
import { SceneModel } from './sceneModel.ts';
import type { WorldModel } from './worldModel.ts';

/** The models that run in this process without loading anything: what a model thread can build. */
const LOCAL_MODEL_NAMES = ['procedural', 'scene'] as const;

export interface LocalModelSettings {
  readonly width?: number;
  readonly height?: number;
  readonly framesPerClip?: number;
  /** Required by the `scene` oracle: the scene it renders. */
  readonly scene?: Scene;
}

/** A fresh local model by name; unknown names and missing settings are clear errors. */
export function createLocalModel(name: string, settings: LocalModelSettings = {}): WorldModel {
  switch (name) {
    case 'procedural':
      return new ProceduralModel(settings);
    case 'scene':
      if (!settings.scene)
        throw new SpatiaError('INVALID_ARGUMENT', 'the "scene" model needs a scene to render');
      return new SceneModel(settings.scene, settings);
    default:
      throw new SpatiaError(
        'UNKNOWN_MODEL',
        `"${name}" is not a local model (local: ${LOCAL_MODEL_NAMES.join(', ')})`,
      );
  }
}
