import type { Scene } from './sceneFormat.ts';

/**
 * The prompt a bundled or loaded scene is explored with, in play and in the eval alike (the
 * procedural model styles and places its inventions by it).
 */
export function promptForScene(scene: Scene): string {
  if (/room|hall|museum|gallery/i.test(`${scene.name} ${scene.description}`))
    return `an indoor ${scene.name}`;
  return `a sunny ${scene.name} outdoors`;
}
