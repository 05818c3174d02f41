import type { CameraState } from '../../shared/camera/controller.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { BUNDLED_SCENES, loadBundledScene } from '../scene/loadScene.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import type { WorldStore } from '../store/worldStore.ts';

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
    memory?: SpatialMemory,
    /** Invite token of a private world; absent for a public one. */
    readonly inviteToken?: string,
  ) {
    this.memory = memory ?? SpatialMemory.create(voxelSizeM);
    // A world restored from the store already holds its seed frame.
    this.seeded = memory !== undefined && memory.grid.voxelCount > 0;
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

  private inventing: Promise<void> = Promise.resolve();

  /**
   * Runs `fn` while no other clip of this world is inventing: a clip over unseen space waits for
   * one already inventing there, then sees its result in the memory instead of inventing anew.
   */
  async whileInventing<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.inventing;
    let release!: () => void;
    this.inventing = new Promise<void>((r) => {
      release = r;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** World time in seconds (moves dynamic content). */
  timeS(): number {
    return (performance.now() - this.createdAtMs) / 1000;
  }
}

/** The bundled ground-truth scene of this name, if there is one. */
function bundledScene(name: string | undefined): Scene | undefined {
  return name && (BUNDLED_SCENES as readonly string[]).includes(name)
    ? loadBundledScene(name as (typeof BUNDLED_SCENES)[number])
    : undefined;
}

const DEFAULT_PROMPTS: Record<string, string> = {
  room: 'an indoor room',
  courtyard: 'a sunny courtyard outdoors',
  'hall-dynamic': 'an indoor museum hall',
};

export class WorldRegistry {
  private readonly worlds = new Map<string, World>();

  constructor(
    readonly voxelSizeM: number,
    readonly store?: WorldStore,
  ) {}

  get(id: string): World | undefined {
    return this.worlds.get(id);
  }

  all(): IterableIterator<World> {
    return this.worlds.values();
  }

  /** The world with this id if it exists: in RAM, or restored from the store (and kept in RAM). */
  find(id: string): World | undefined {
    const w = this.worlds.get(id);
    if (w || !this.store) return w;
    const stored = this.store.getWorld(id);
    if (!stored) return undefined;
    const restored = new World(
      id,
      stored.prompt,
      stored.seed,
      stored.voxelSizeM,
      bundledScene(stored.scene),
      this.store.loadMemory(id, stored.voxelSizeM),
      stored.inviteToken,
    );
    this.worlds.set(id, restored);
    return restored;
  }

  /**
   * The world with this id: found (RAM or store), else created from the prompt and seed, or from
   * the bundled scene of that name, and recorded in the store.
   */
  getOrCreate(id: string, prompt?: string, seed?: number, inviteToken?: string): World {
    const found = this.find(id);
    if (found) return found;
    const scene = bundledScene(id);
    const w = new World(
      id,
      prompt ?? DEFAULT_PROMPTS[id] ?? 'a sunny courtyard outdoors',
      seed ?? 1,
      this.voxelSizeM,
      scene,
      undefined,
      inviteToken,
    );
    this.store?.upsertWorld({
      id,
      prompt: w.prompt,
      seed: w.seed,
      voxelSizeM: this.voxelSizeM,
      scene: scene ? id : undefined,
      inviteToken,
      createdAt: new Date().toISOString(),
    });
    this.worlds.set(id, w);
    return w;
  }

  get size(): number {
    return this.worlds.size;
  }
}
