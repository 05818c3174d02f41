import type { CameraState } from '../../shared/camera/controller.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { BUNDLED_SCENES, loadBundledScene } from '../scene/loadScene.ts';
import type { Scene } from '../scene/sceneFormat.ts';

/**
 * A world: one spatial memory shared by every player in it, the prompt and seed it was created
 * with, and (for the bundled scene ids `room`, `courtyard`, `hall-dynamic`) the ground-truth scene
 * whose first view seeds it, which makes consistency testable.
 */
export class World {
  readonly memory: SpatialMemory;
  readonly players = new Set<string>();
  /** Set once the first player's director has fused the seed frame. */
  seeded = false;
  readonly createdAtMs = performance.now();

  constructor(
    readonly id: string,
    public prompt: string,
    readonly seed: number,
    voxelSizeM: number,
    readonly scene?: Scene,
  ) {
    this.memory = SpatialMemory.create(voxelSizeM);
  }

  /** Where players appear: the scene's spawn, or 1.6 m above the origin looking along −z. */
  spawn(): CameraState {
    if (!this.scene) return { position: [0, 1.6, 0], yaw: 0, pitch: 0 };
    const s = this.scene.spawn;
    return {
      position: [...s.position] as Vec3,
      yaw: (s.yawDeg * Math.PI) / 180,
      pitch: (s.pitchDeg * Math.PI) / 180,
    };
  }

  /** World time in seconds (moves dynamic content). */
  timeS(): number {
    return (performance.now() - this.createdAtMs) / 1000;
  }
}

const DEFAULT_PROMPTS: Record<string, string> = {
  room: 'an indoor room',
  courtyard: 'a sunny courtyard outdoors',
  'hall-dynamic': 'an indoor museum hall',
};

export class WorldRegistry {
  private readonly worlds = new Map<string, World>();

  constructor(readonly voxelSizeM: number) {}

  get(id: string): World | undefined {
    return this.worlds.get(id);
  }

  /** The world with this id, created on first use (from the prompt and seed, or a bundled scene). */
  getOrCreate(id: string, prompt?: string, seed?: number): World {
    let w = this.worlds.get(id);
    if (!w) {
      const scene = (BUNDLED_SCENES as readonly string[]).includes(id)
        ? loadBundledScene(id as (typeof BUNDLED_SCENES)[number])
        : undefined;
      w = new World(
        id,
        prompt ?? DEFAULT_PROMPTS[id] ?? 'a sunny courtyard outdoors',
        seed ?? 1,
        this.voxelSizeM,
        scene,
      );
      this.worlds.set(id, w);
    }
    return w;
  }

  get size(): number {
    return this.worlds.size;
  }
}
