import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpatiaError } from '../../shared/errors.ts';
import { parseScene, type Scene } from './sceneFormat.ts';

/** Folder of the bundled ground-truth scenes. */
const SCENES_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../assets/scenes');

/** The bundled scenes by name. */
export const BUNDLED_SCENES = ['room', 'courtyard', 'hall-dynamic'] as const;

/** Reads and validates a scene JSON file; errors say which file and what is wrong. */
export function loadSceneFile(path: string): Scene {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SpatiaError('SCENE_FORMAT', `cannot read scene file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SpatiaError('SCENE_FORMAT', `scene file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseScene(json);
  } catch (e) {
    if (e instanceof SpatiaError) throw new SpatiaError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}

/** A bundled scene by name. */
export function loadBundledScene(name: (typeof BUNDLED_SCENES)[number]): Scene {
  return loadSceneFile(join(SCENES_DIR, `${name}.json`));
}
