import type { Logger } from 'pino';
import { BUNDLED_SCENES, loadBundledScene } from '../scene/loadScene.ts';
import { promptForScene } from '../scene/prompts.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import type { WorldStore } from '../store/worldStore.ts';
import { World } from './world.ts';

/** The prompt of a world created without one and without a bundled scene. */
const DEFAULT_WORLD_PROMPT = 'a sunny courtyard outdoors';

/** The bundled ground-truth scene of this name, if there is one. */
function bundledScene(name: string | undefined): Scene | undefined {
  return name && (BUNDLED_SCENES as readonly string[]).includes(name)
    ? loadBundledScene(name as (typeof BUNDLED_SCENES)[number])
    : undefined;
}

/**
 * The worlds this server holds in RAM, restored from the store on first use and committed to it
 * on a timer. `dispose` stops the timer and commits a last time.
 */
export class WorldRegistry {
  private readonly worlds = new Map<string, World>();
  private commitTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly voxelSizeM: number,
    private readonly store: WorldStore | undefined,
    private readonly log: Logger,
  ) {}

  get(id: string): World | undefined {
    return this.worlds.get(id);
  }

  all(): IterableIterator<World> {
    return this.worlds.values();
  }

  get size(): number {
    return this.worlds.size;
  }

  /** The world with this id if it exists: in RAM, or restored from the store (and kept in RAM). */
  find(id: string): World | undefined {
    const w = this.worlds.get(id);
    if (w || !this.store) return w;
    const stored = this.store.getWorld(id);
    if (!stored) return undefined;
    const restored = new World({
      id,
      prompt: stored.prompt,
      seed: stored.seed,
      voxelSizeM: stored.voxelSizeM,
      scene: bundledScene(stored.scene),
      memory: this.store.loadMemory(id, stored.voxelSizeM),
      inviteToken: stored.inviteToken,
      store: this.store,
    });
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
    const w = new World({
      id,
      prompt: prompt ?? (scene ? promptForScene(scene) : DEFAULT_WORLD_PROMPT),
      seed: seed ?? 1,
      voxelSizeM: this.voxelSizeM,
      scene,
      inviteToken,
      store: this.store,
    });
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

  /** Commits every world's changes (and the recorded sessions) every `intervalMs`. */
  startCommitting(intervalMs: number): void {
    if (!this.store || this.commitTimer) return;
    this.commitTimer = setInterval(() => this.commitAll(), intervalMs);
  }

  /** Flushes recorded sessions and commits every world; a failure is logged and the next world still commits. */
  commitAll(): void {
    if (!this.store) return;
    try {
      this.store.sessions.flush();
    } catch (e) {
      this.log.error({ err: e }, 'session log flush failed');
    }
    for (const world of this.worlds.values()) {
      try {
        const c = world.commit();
        if (c && c.chunks + c.keyframes > 0) this.log.debug({ world: world.id, ...c }, 'committed');
      } catch (e) {
        this.log.error({ err: e, world: world.id }, 'commit failed');
      }
    }
  }

  /** Stops committing on a timer and commits what is left. */
  dispose(): void {
    clearInterval(this.commitTimer);
    this.commitTimer = undefined;
    this.commitAll();
  }
}
