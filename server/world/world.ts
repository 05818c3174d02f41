import { createHash, timingSafeEqual } from 'node:crypto';
import type { CameraState } from '../../shared/camera/controller.ts';
import {
  type Bounds,
  type EditOp,
  type EditRecord,
  editBounds,
  type LoggedEditOp,
} from '../../shared/edit/editOps.ts';
import { fnv1a } from '../../shared/math/random.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import type { WorldStats } from '../../shared/protocol/events.ts';
import { encodeRgbPng } from '../io/png.ts';
import type { PointsToInsert } from '../memory/edit.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import type { CommitStats, WorldMeta, WorldStore } from '../store/worldStore.ts';
import { type EditAuthor, type EditEvent, EditLog, storedEdit } from './editLog.ts';

/** The seed of a world created without one: its id's hash, so two worlds with one prompt invent different places. */
export const defaultWorldSeed = (id: string): number => fnv1a(id);

/** Someone in a world, as the world and the other members see them. */
export interface WorldMember {
  readonly id: string;
  readonly name: string;
  readonly camera: CameraState;
}

/**
 * Chunks, and keyframes taken from, within this distance of a player are kept in (or brought back
 * to) RAM: a world's RAM follows where its players are, not how much of it was ever explored.
 */
export const RESIDENT_RADIUS_M = 30;
/** Within this of a player, stored chunks are resident (loaded every few clips, within RESIDENT_RADIUS_M). */
const RESIDENT_NEAR_M = RESIDENT_RADIUS_M - 8;
/** Committed chunks and keyframes farther than this from every player may leave RAM. */
const EVICT_RADIUS_M = 45;
/** Pixels per metre of the minimap. */
const MAP_PX_PER_M = 16;

export interface WorldInit {
  readonly id: string;
  readonly prompt: string;
  readonly seed: number;
  readonly voxelSizeM: number;
  /** The bundled ground-truth scene whose first view seeds the world (makes consistency testable). */
  readonly scene?: Scene;
  /** Memory restored from the store (absent: a new, empty world). */
  readonly memory?: SpatialMemory;
  /** Invite token of a private world; absent for a public one. */
  readonly inviteToken?: string;
  /** SHA-256 (hex) of the token that lets the creator of a private world rotate its invite. */
  readonly ownerTokenHash?: string;
  /** When the world was created (ISO 8601), as stored. */
  readonly createdAt: string;
  /** Where players appear, when the world names it (imported captures); else `spawnIn(scene)`. */
  readonly spawn?: CameraState;
  /** Where the world's memory is committed and far chunks come back from (absent: RAM only). */
  readonly store?: WorldStore;
  /** The edit log as stored (restored worlds). */
  readonly edits?: readonly EditRecord[];
  /** The creator locked editing. */
  readonly editLocked?: boolean;
}

/**
 * A world: one spatial memory shared by every player in it, the prompt and seed it was created
 * with, its clock and its invention lock. Lifecycle: created (or restored) by the `WorldRegistry`,
 * members join and leave, `commit` persists what changed, `dispose` commits a last time.
 */
export class World {
  readonly id: string;
  readonly seed: number;
  readonly scene: Scene | undefined;
  readonly memory: SpatialMemory;
  prompt: string;
  private readonly members = new Map<string, WorldMember>();
  /** Set once the first player has fused the seed frame (a restored world already holds it). */
  private seeded: boolean;
  private readonly createdAtMs = performance.now();
  private readonly store: WorldStore | undefined;
  private inventing: Promise<void> = Promise.resolve();
  private commits = 0;
  private invite: string | undefined;
  private readonly ownerTokenHash: string | undefined;
  private readonly createdAt: string;
  private readonly voxelSizeM: number;
  private readonly spawnAt: CameraState | undefined;
  /** When the last member left (performance.now() ms); undefined while someone plays. */
  private idleSinceMs: number | undefined = performance.now();
  /** Every edit of this world's memory, and each player's undo history. */
  readonly edits: EditLog;
  private locked: boolean;
  private readonly editListeners = new Set<(e: EditEvent) => void>();
  /** Log rows not yet handed to the store (it refused a commit): they go with the next one. */
  private unsavedEdits: EditRecord[] = [];
  /** Another node serves this world now: nothing more is written to the store. */
  private revoked = false;
  /** Clustered: the epoch of this node's lease on the world; every commit carries it (a fence). */
  leaseEpoch: number | undefined;

  constructor(init: WorldInit) {
    this.id = init.id;
    this.prompt = init.prompt;
    this.seed = init.seed;
    this.scene = init.scene;
    this.invite = init.inviteToken;
    this.ownerTokenHash = init.ownerTokenHash;
    this.createdAt = init.createdAt;
    this.voxelSizeM = init.voxelSizeM;
    this.spawnAt = init.spawn;
    this.store = init.store;
    this.memory = init.memory ?? SpatialMemory.create(init.voxelSizeM);
    this.seeded = init.memory !== undefined && init.memory.voxelCount > 0;
    this.edits = new EditLog(this.memory.grid, init.edits);
    this.locked = init.editLocked ?? false;
  }

  /** Whether the creator locked editing. */
  get editLocked(): boolean {
    return this.locked;
  }

  /** Locks or unlocks editing (the caller checked it is the creator) and stores it. */
  lockEditing(locked: boolean): void {
    this.locked = locked;
    this.writableStore?.upsertWorld(this.meta());
  }

  /** Stops writing to the store for good (the registry dropped the world: another node serves it). */
  revoke(): void {
    this.revoked = true;
  }

  /** The store while this node may write the world to it. */
  private get writableStore(): WorldStore | undefined {
    return this.revoked ? undefined : this.store;
  }

  /** Calls `fn` after every edit, undo and redo; returns the function that stops it. */
  onEdit(fn: (e: EditEvent) => void): () => void {
    this.editListeners.add(fn);
    return () => this.editListeners.delete(fn);
  }

  /**
   * Applies an edit to the memory (the stored chunks it reaches are brought back first), logs it,
   * commits it with the chunks it changed in one transaction, and tells every listener. CAPACITY
   * when it would change too many voxels (nothing changed).
   */
  edit(op: EditOp, author: EditAuthor): EditEvent {
    this.loadAround(editBounds(op));
    return this.publish(this.edits.apply(op, author, new Date()));
  }

  /** Places a point cloud (the `world edit --insert-ply` tool). */
  insertPoints(points: PointsToInsert, summary: LoggedEditOp, author: EditAuthor): EditEvent {
    return this.publish(this.edits.insertPoints(points, summary, author, new Date()));
  }

  /** Undoes the author's latest edit; undefined when there is none. */
  undo(authorId: string): EditEvent | undefined {
    const e = this.edits.undo(authorId);
    return e && this.publish(e);
  }

  /** Redoes the author's latest undone edit; undefined when there is none. */
  redo(authorId: string): EditEvent | undefined {
    const e = this.edits.redo(authorId);
    return e && this.publish(e);
  }

  private publish(e: EditEvent): EditEvent {
    if (this.writableStore) {
      this.unsavedEdits.push(storedEdit(e.entry));
      try {
        this.commit();
      } catch {
        // The store cannot save now (it reported why): the edit stands in RAM, and its row goes with the next commit.
      }
    }
    for (const fn of this.editListeners) fn(e);
    return e;
  }

  /**
   * Brings back the stored chunks an edit within `b` may touch, unless a player stands near enough
   * that they are resident already (what a player edits is within the mirror's reach of them).
   */
  private loadAround(b: Bounds): void {
    if (!this.store) return;
    const center: Vec3 = [(b.min[0] + b.max[0]) / 2, (b.min[1] + b.max[1]) / 2, (b.min[2] + b.max[2]) / 2];
    const radius = Math.hypot(b.max[0] - b.min[0], b.max[2] - b.min[2]) / 2 + this.memory.grid.chunkSizeM;
    const resident = this.players.some(
      (m) =>
        Math.hypot(m.camera.position[0] - center[0], m.camera.position[2] - center[2]) + radius <
        RESIDENT_NEAR_M,
    );
    if (!resident) this.store.loadNear(this.id, this.memory, center, radius);
  }

  /** The world's row in the store. */
  private meta(): WorldMeta {
    return {
      id: this.id,
      prompt: this.prompt,
      seed: this.seed,
      voxelSizeM: this.voxelSizeM,
      scene: this.scene ? this.id : undefined,
      inviteToken: this.invite,
      ownerTokenHash: this.ownerTokenHash,
      spawn: this.spawnAt,
      editLocked: this.locked,
      createdAt: this.createdAt,
    };
  }

  /** Invite token of a private world; undefined for a public one. */
  get inviteToken(): string | undefined {
    return this.invite;
  }

  /** Whether `ownerToken` is the token of this private world's creator (constant time). */
  isOwner(ownerToken: string): boolean {
    if (this.ownerTokenHash === undefined) return false;
    const a = Buffer.from(tokenHash(ownerToken), 'hex');
    const b = Buffer.from(this.ownerTokenHash, 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Replaces the invite token (the old one stops admitting anyone) and stores it. */
  rotateInvite(token: string): void {
    this.invite = token;
    this.writableStore?.upsertWorld(this.meta());
  }

  /** Where players appear: the world's own spawn, else its scene's (see `spawnIn`). */
  spawn(): CameraState {
    return this.spawnAt ? { ...this.spawnAt, position: [...this.spawnAt.position] } : spawnIn(this.scene);
  }

  /** Whether the next player to claim it will seed the memory. */
  get needsSeeding(): boolean {
    return !this.seeded;
  }

  /** True exactly once, for the first player of a new world: it seeds the memory. */
  claimSeeding(): boolean {
    if (this.seeded) return false;
    this.seeded = true;
    return true;
  }

  /** World time in seconds (moves dynamic content). */
  timeS(): number {
    return (performance.now() - this.createdAtMs) / 1000;
  }

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

  join(member: WorldMember): void {
    this.members.set(member.id, member);
    this.idleSinceMs = undefined;
  }

  leave(member: WorldMember): void {
    this.members.delete(member.id);
    if (this.members.size === 0) this.idleSinceMs = performance.now();
  }

  /** Milliseconds since the last member left (0 while someone plays). */
  idleMs(nowMs: number): number {
    return this.idleSinceMs === undefined ? 0 : nowMs - this.idleSinceMs;
  }

  get playerCount(): number {
    return this.members.size;
  }

  /** Everyone playing here, in joining order. */
  get players(): readonly WorldMember[] {
    return [...this.members.values()];
  }

  /** A player by id or name. */
  findPlayer(idOrName: string): WorldMember | undefined {
    return this.members.get(idOrName) ?? this.players.find((m) => m.name === idOrName);
  }

  /** Brings back the stored chunks and keyframes near `position` that had left RAM. */
  loadNear(position: Vec3): void {
    this.store?.loadNear(this.id, this.memory, position, RESIDENT_RADIUS_M);
  }

  /**
   * Commits changed chunks and new keyframes; every tenth commit lets chunks and keyframes far from
   * every player leave RAM.
   */
  commit(): CommitStats | undefined {
    const store = this.writableStore;
    if (!store) return undefined;
    const edits = this.unsavedEdits;
    this.unsavedEdits = [];
    let stats: CommitStats;
    try {
      stats = store.commit(this.id, this.memory, edits, this.leaseEpoch);
    } catch (e) {
      this.unsavedEdits = [...edits, ...this.unsavedEdits];
      throw e;
    }
    if (++this.commits % 10 === 0 && this.members.size > 0)
      store.evictFar(
        this.id,
        this.memory,
        this.players.map((m) => m.camera.position),
        EVICT_RADIUS_M,
      );
    return stats;
  }

  /** What the players' HUD shows; `withMap` adds the top-down minimap (a PNG). */
  stats(withMap: boolean): WorldStats {
    const s = this.memory.stats();
    let map: WorldStats['map'];
    if (withMap && s.voxels > 0) {
      const m = this.memory.topDownMap(MAP_PX_PER_M);
      map = {
        png: encodeRgbPng(m.rgb, m.width, m.height),
        minX: m.originX,
        minZ: m.originZ,
        pxPerM: m.pxPerM,
      };
    }
    return {
      worldId: this.id,
      voxels: s.voxels,
      keyframes: s.keyframes,
      memoryBytes: s.bytes,
      players: this.members.size,
      map,
    };
  }
}

/** Where players of a world appear: its scene's spawn, or 1.6 m above the origin looking along −z. */
export function spawnIn(scene: Scene | undefined): CameraState {
  if (!scene) return { position: [0, 1.6, 0], yaw: 0, pitch: 0 };
  const s = scene.spawn;
  return {
    position: [...s.position] as Vec3,
    yaw: (s.yawDeg * Math.PI) / 180,
    pitch: (s.pitchDeg * Math.PI) / 180,
  };
}

/** SHA-256 (hex) of a token: what the store keeps of an owner token. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');
