import type { Logger } from 'pino';
import { SpatiaError } from '../../shared/errors.ts';
import type { ErrorCode } from '../../shared/protocol/events.ts';
import type { ServerLimits } from '../limits.ts';
import { BUNDLED_SCENES, loadBundledScene } from '../scene/loadScene.ts';
import { promptForScene } from '../scene/prompts.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import type { WorldMeta, WorldStore } from '../store/worldStore.ts';
import { defaultWorldSeed, RESIDENT_RADIUS_M, spawnIn, tokenHash, World } from './world.ts';

/** The prompt of a world created without one and without a bundled scene. */
const DEFAULT_WORLD_PROMPT = 'a sunny courtyard outdoors';

/** The bundled ground-truth scene of this name, if there is one. */
function bundledScene(name: string | undefined): Scene | undefined {
  return name && (BUNDLED_SCENES as readonly string[]).includes(name)
    ? loadBundledScene(name as (typeof BUNDLED_SCENES)[number])
    : undefined;
}

/** A world found or made, or why not (a code the socket layer sends on). */
export type WorldResult =
  | { readonly ok: true; readonly world: World }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * The worlds this server holds in RAM: restored from the store on first use, committed to it on a
 * timer, unloaded when nobody has played them for `limits.worldIdleS`, at most
 * `limits.loadedWorlds` at once. A world that fails to load is quarantined: refused with
 * WORLD_UNAVAILABLE until restart, while every other world keeps playing. `dispose` stops the
 * timer and commits a last time.
 */
export class WorldRegistry {
  private readonly worlds = new Map<string, World>();
  /** World id → why it could not be loaded. */
  private readonly quarantined = new Map<string, string>();
  /** Clustered: world id → the epoch of this node's lease on it (worlds made or restored take it). */
  private readonly leaseEpochs = new Map<string, number>();
  private commitTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly voxelSizeM: number,
    private readonly store: WorldStore | undefined,
    private readonly log: Logger,
    private readonly limits: Pick<ServerLimits, 'loadedWorlds' | 'worldIdleS'>,
    /** Called after a world left RAM (committed and unloaded): a clustered node gives up its lease. */
    private readonly onUnloaded: (id: string) => void = () => {},
  ) {}

  /** Ids of the worlds that failed to load, with the reason (for the health endpoint). */
  get quarantine(): ReadonlyMap<string, string> {
    return this.quarantined;
  }

  get(id: string): World | undefined {
    return this.worlds.get(id);
  }

  /** Clustered: this node holds the world's lease under `epoch`; its commits carry it from now on. */
  setLeaseEpoch(id: string, epoch: number): void {
    this.leaseEpochs.set(id, epoch);
    const w = this.worlds.get(id);
    if (w) w.leaseEpoch = epoch;
  }

  all(): IterableIterator<World> {
    return this.worlds.values();
  }

  get size(): number {
    return this.worlds.size;
  }

  /**
   * The world with this id if it exists (`world` undefined if not): in RAM, or restored from the
   * store. A world whose stored state cannot be loaded is quarantined and refused.
   */
  lookup(id: string): { ok: true; world: World | undefined } | Extract<WorldResult, { ok: false }> {
    if (this.quarantined.has(id)) return unavailable(id);
    const inRam = this.worlds.get(id);
    if (inRam || !this.store) return { ok: true, world: inRam };
    try {
      const stored = this.store.getWorld(id);
      if (!stored) return { ok: true, world: undefined };
      // A full server refuses for now; only a world that fails to load is quarantined.
      if (!this.makeRoom()) return this.busy();
      return { ok: true, world: this.restore(stored, this.store) };
    } catch (e) {
      // A store that does not answer says nothing about the world: refused for now, not quarantined.
      if (e instanceof SpatiaError && e.code === 'STORE_UNAVAILABLE') {
        this.log.warn({ err: e.message, world: id }, 'world could not be loaded: the store does not answer');
        return {
          ok: false,
          code: 'WORLD_UNAVAILABLE',
          message: `world "${id}" cannot be loaded now: the world store does not answer; try again shortly`,
        };
      }
      this.quarantined.set(id, (e as Error).message);
      this.log.error({ err: e, world: id }, 'world failed to load: quarantined');
      return unavailable(id);
    }
  }

  /**
   * A new world (the caller looked it up first), unless the server holds as many as it may. A
   * private one gets an invite token and its creator an owner token (kept only as a hash).
   */
  create(
    id: string,
    prompt?: string,
    seed?: number,
    tokens?: { invite?: string; owner: string },
  ): WorldResult {
    if (!this.makeRoom()) return this.busy();
    try {
      return { ok: true, world: this.make(id, prompt, seed, tokens) };
    } catch (e) {
      this.log.error({ err: e, world: id }, 'world could not be created');
      return { ok: false, code: 'WORLD_UNAVAILABLE', message: `world "${id}" could not be created (logged)` };
    }
  }

  private busy(): Extract<WorldResult, { ok: false }> {
    return {
      ok: false,
      code: 'SERVER_BUSY',
      message: `the server holds ${this.limits.loadedWorlds} worlds in play: try again when one is idle`,
    };
  }

  /** Unloads the longest-idle world when the registry is full; false when every world is in play. */
  private makeRoom(): boolean {
    if (this.worlds.size < this.limits.loadedWorlds) return true;
    this.unloadIdle(0, this.worlds.size - this.limits.loadedWorlds + 1);
    return this.worlds.size < this.limits.loadedWorlds;
  }

  /**
   * Commits and drops up to `max` worlds nobody has played for `minIdleMs`, longest idle first. A
   * world whose commit fails stays in RAM (nothing is lost).
   */
  unloadIdle(minIdleMs: number, max = Number.POSITIVE_INFINITY): number {
    const now = performance.now();
    const idle = [...this.worlds.values()]
      .filter((w) => w.playerCount === 0 && w.idleMs(now) >= minIdleMs)
      .sort((a, b) => b.idleMs(now) - a.idleMs(now));
    let unloaded = 0;
    for (const w of idle.slice(0, max)) {
      try {
        w.commit();
      } catch (e) {
        this.log.error({ err: e, world: w.id }, 'commit before unloading failed: the world stays in RAM');
        continue;
      }
      this.worlds.delete(w.id);
      this.leaseEpochs.delete(w.id);
      this.store?.unloadWorld(w.id);
      unloaded++;
      this.log.info({ world: w.id, persisted: this.store !== undefined }, 'idle world unloaded');
      this.onUnloaded(w.id);
    }
    return unloaded;
  }

  /**
   * Drops a world from RAM without committing it: another node serves it now (its lease was lost),
   * and what this node did not commit is no longer its to write. The world stops writing to the
   * store; the caller sends its players away.
   */
  drop(id: string): World | undefined {
    const w = this.worlds.get(id);
    if (!w) return undefined;
    w.revoke();
    this.worlds.delete(id);
    this.leaseEpochs.delete(id);
    this.store?.unloadWorld(id);
    return w;
  }

  /** A stored world brought back into RAM (throws when its stored state cannot be read). */
  private restore(stored: WorldMeta, store: WorldStore): World {
    const id = stored.id;
    const scene = bundledScene(stored.scene);
    // What is near the spawn; the rest comes back as players walk (World.loadNear).
    const near = { position: (stored.spawn ?? spawnIn(scene)).position, radiusM: RESIDENT_RADIUS_M };
    const restored = new World({
      id,
      prompt: stored.prompt,
      seed: stored.seed,
      voxelSizeM: stored.voxelSizeM,
      scene,
      memory: store.loadMemory(id, stored.voxelSizeM, near),
      inviteToken: stored.inviteToken,
      ownerTokenHash: stored.ownerTokenHash,
      spawn: stored.spawn,
      createdAt: stored.createdAt,
      store,
      edits: store.listEdits(id),
      editLocked: stored.editLocked,
    });
    restored.leaseEpoch = this.leaseEpochs.get(id);
    this.worlds.set(id, restored);
    return restored;
  }

  /** A new world from the prompt and seed, or from the bundled scene of that name, recorded in the store. */
  private make(
    id: string,
    prompt?: string,
    seed?: number,
    tokens?: { invite?: string; owner: string },
  ): World {
    const scene = bundledScene(id);
    const inviteToken = tokens?.invite;
    const ownerTokenHash = tokens ? tokenHash(tokens.owner) : undefined;
    const createdAt = new Date().toISOString();
    const w = new World({
      id,
      prompt: prompt ?? (scene ? promptForScene(scene) : DEFAULT_WORLD_PROMPT),
      seed: seed ?? defaultWorldSeed(id),
      voxelSizeM: this.voxelSizeM,
      scene,
      inviteToken,
      ownerTokenHash,
      createdAt,
      store: this.store,
    });
    this.store?.upsertWorld({
      id,
      prompt: w.prompt,
      seed: w.seed,
      voxelSizeM: this.voxelSizeM,
      scene: scene ? id : undefined,
      inviteToken,
      ownerTokenHash,
      createdAt,
    });
    w.leaseEpoch = this.leaseEpochs.get(id);
    this.worlds.set(id, w);
    return w;
  }

  /** Every `intervalMs`: commits every world's changes (and recorded sessions), unloads idle worlds. */
  startCommitting(intervalMs: number): void {
    if (this.commitTimer) return;
    this.commitTimer = setInterval(() => {
      this.commitAll();
      this.unloadIdle(this.limits.worldIdleS * 1000);
    }, intervalMs);
  }

  /** Flushes recorded sessions and commits every world; a failure is logged and the next world still commits. */
  commitAll(): void {
    if (!this.store) return;
    // A store that is not saving (file deleted or replaced) reported it once; retrying every second would only repeat it.
    if (!this.store.health().ok) return;
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

const unavailable = (id: string): Extract<WorldResult, { ok: false }> => ({
  ok: false,
  code: 'WORLD_UNAVAILABLE',
  message: `world "${id}" could not be loaded and is closed until the operator repairs it (other worlds play on)`,
});
