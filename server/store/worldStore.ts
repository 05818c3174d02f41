import { deflateRawSync, inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { BinaryReader, BinaryWriter } from '../../shared/codec/binaryWriter.ts';
import { SpatiaError } from '../../shared/errors.ts';
import { KeyframeStore } from '../memory/keyframes.ts';
import { decodeChunk, decodeKeyframe, encodeChunk, encodeKeyframe } from '../memory/snapshot.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import type { VoxelChunk } from '../memory/voxelChunk.ts';
import { VoxelGrid } from '../memory/voxelGrid.ts';
import { checkReadable, migrate, refuseUnknownStore } from './schema.ts';
import { SessionLog } from './sessionLog.ts';

/** What a world is, apart from its memory. */
export interface WorldMeta {
  readonly id: string;
  readonly prompt: string;
  readonly seed: number;
  readonly voxelSizeM: number;
  /** Bundled ground-truth scene the world was seeded from, if any. */
  readonly scene?: string | undefined;
  /** Invite token of a private world (absent: public). */
  readonly inviteToken?: string | undefined;
  readonly createdAt: string;
}

export interface CommitStats {
  readonly chunks: number;
  readonly keyframes: number;
  readonly bytes: number;
}

/**
 * Durable worlds in SQLite (WAL): metadata, memory chunks and keyframes. The tables and their
 * versions are in `schema.ts`: opening read-write migrates an older store forward; a store from a
 * newer Spatia is refused, and so is, read-only, one that would need migrating. `commit` writes, in one
 * transaction, every chunk whose revision moved since it was last written and every new keyframe,
 * so a crash (even SIGKILL) loses at most what changed since the last commit. Chunks are the unit:
 * far-away chunks can leave RAM (`evictChunks`) and come back (`loadChunksNear`).
 */
export class WorldStore {
  private readonly db: Database.Database;
  /** Recorded play sessions, in the same database. */
  readonly sessions: SessionLog;
  /** Per world: chunk key → revision last written; keyframe ids written. */
  private readonly written = new Map<string, { chunks: Map<number, number>; keyframes: Set<number> }>();

  constructor(
    readonly path: string,
    opts: { readonly?: boolean } = {},
  ) {
    try {
      this.db = new Database(path, {
        readonly: opts.readonly ?? false,
        fileMustExist: opts.readonly ?? false,
      });
    } catch (e) {
      throw new SpatiaError('STORE', `cannot open the world store ${path}: ${(e as Error).message}`);
    }
    try {
      if (opts.readonly) checkReadable(this.db, path);
      else {
        refuseUnknownStore(this.db, path); // before the first write: a refused file stays byte-identical
        this.db.pragma('journal_mode = WAL');
        // WAL + NORMAL: a committed transaction survives a process crash; only an OS crash can lose the last ones.
        this.db.pragma('synchronous = NORMAL');
        this.db.pragma('foreign_keys = ON');
        migrate(this.db, path);
      }
    } catch (e) {
      this.db.close();
      if (e instanceof SpatiaError) throw e;
      throw new SpatiaError('STORE', `cannot open the world store ${path}: ${(e as Error).message}`);
    }
    this.sessions = new SessionLog(this.db);
  }

  close(): void {
    this.db.close();
  }

  upsertWorld(meta: WorldMeta): void {
    this.db
      .prepare(
        `INSERT INTO worlds (id, prompt, seed, voxel_size, scene, invite_token, created_at)
         VALUES (@id, @prompt, @seed, @voxelSizeM, @scene, @inviteToken, @createdAt)
         ON CONFLICT(id) DO UPDATE SET prompt = excluded.prompt`,
      )
      .run({ ...meta, scene: meta.scene ?? null, inviteToken: meta.inviteToken ?? null });
  }

  getWorld(id: string): WorldMeta | undefined {
    const row = this.db.prepare('SELECT * FROM worlds WHERE id = ?').get(id) as
      | {
          id: string;
          prompt: string;
          seed: number;
          voxel_size: number;
          scene: string | null;
          invite_token: string | null;
          created_at: string;
        }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      prompt: row.prompt,
      seed: row.seed,
      voxelSizeM: row.voxel_size,
      scene: row.scene ?? undefined,
      inviteToken: row.invite_token ?? undefined,
      createdAt: row.created_at,
    };
  }

  listWorlds(): string[] {
    return (this.db.prepare('SELECT id FROM worlds ORDER BY created_at').all() as { id: string }[]).map(
      (r) => r.id,
    );
  }

  private state(worldId: string): { chunks: Map<number, number>; keyframes: Set<number> } {
    let s = this.written.get(worldId);
    if (!s) {
      s = { chunks: new Map(), keyframes: new Set() };
      this.written.set(worldId, s);
    }
    return s;
  }

  /** Writes what changed in `memory` since the last commit, atomically. */
  commit(worldId: string, memory: SpatialMemory): CommitStats {
    const s = this.state(worldId);
    const dirty: VoxelChunk[] = [];
    for (const c of memory.grid.chunks())
      if (c.count > 0 && s.chunks.get(c.key) !== c.revision) dirty.push(c);
    const newKeyframes = memory.keyframes.all().filter((kf) => !s.keyframes.has(kf.id));
    if (dirty.length === 0 && newKeyframes.length === 0) return { chunks: 0, keyframes: 0, bytes: 0 };
    let bytes = 0;
    const putChunk = this.db.prepare(
      `INSERT INTO chunks (world_id, chunk_key, cx, cy, cz, voxels, data) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(world_id, chunk_key) DO UPDATE SET voxels = excluded.voxels, data = excluded.data`,
    );
    const putKeyframe = this.db.prepare(
      'INSERT OR REPLACE INTO keyframes (world_id, id, data) VALUES (?, ?, ?)',
    );
    const encoded = dirty.map((c) => {
      const w = new BinaryWriter();
      encodeChunk(w, c);
      return { c, data: w.finish(), revision: c.revision };
    });
    const kfs = newKeyframes.map((kf) => {
      const w = new BinaryWriter();
      encodeKeyframe(w, kf);
      // Keyframes carry a full RGB-D image (~1 MB raw); deflate level 1 shrinks them ~3× in ~8 ms.
      return { id: kf.id, data: deflateRawSync(w.finish(), { level: 1 }) };
    });
    this.db.transaction(() => {
      for (const { c, data } of encoded) {
        putChunk.run(worldId, c.key, c.cx, c.cy, c.cz, c.count, data);
        bytes += data.byteLength;
      }
      for (const { id, data } of kfs) {
        putKeyframe.run(worldId, id, data);
        bytes += data.byteLength;
      }
    })();
    for (const { c, revision } of encoded) s.chunks.set(c.key, revision);
    for (const { id } of kfs) s.keyframes.add(id);
    return { chunks: encoded.length, keyframes: kfs.length, bytes };
  }

  /** The world's whole memory as last committed. */
  loadMemory(worldId: string, voxelSizeM: number): SpatialMemory {
    const s = this.state(worldId);
    const grid = new VoxelGrid(voxelSizeM);
    for (const row of this.db
      .prepare('SELECT data FROM chunks WHERE world_id = ?')
      .iterate(worldId) as Iterable<{
      data: Buffer;
    }>) {
      const c = decodeChunk(new BinaryReader(new Uint8Array(row.data), 'STORE', 'stored chunk'));
      grid.putChunk(c);
      s.chunks.set(c.key, c.revision);
    }
    const keyframes = new KeyframeStore();
    for (const row of this.db
      .prepare('SELECT data FROM keyframes WHERE world_id = ? ORDER BY id')
      .iterate(worldId) as Iterable<{ data: Buffer }>) {
      const kf = keyframes.add(
        decodeKeyframe(
          new BinaryReader(new Uint8Array(inflateRawSync(row.data)), 'STORE', 'stored keyframe'),
        ),
      );
      s.keyframes.add(kf.id);
    }
    return new SpatialMemory(grid, keyframes);
  }

  /**
   * Drops committed, unchanged chunks farther than `radiusM` (horizontally) from every position
   * from RAM. Returns how many left. Dirty chunks stay until they are committed.
   */
  evictChunks(
    worldId: string,
    memory: SpatialMemory,
    positions: readonly (readonly number[])[],
    radiusM: number,
  ): number {
    const s = this.state(worldId);
    const size = memory.grid.chunkSizeM;
    let evicted = 0;
    for (const c of [...memory.grid.chunks()]) {
      if (s.chunks.get(c.key) !== c.revision) continue;
      const x = (c.cx + 0.5) * size;
      const z = (c.cz + 0.5) * size;
      if (positions.every((p) => Math.hypot(p[0]! - x, p[2]! - z) > radiusM)) {
        memory.grid.removeChunk(c.key);
        evicted++;
      }
    }
    return evicted;
  }

  /** Brings stored chunks within `radiusM` (horizontally) of `position` back into RAM. Returns how many. */
  loadChunksNear(
    worldId: string,
    memory: SpatialMemory,
    position: readonly number[],
    radiusM: number,
  ): number {
    const s = this.state(worldId);
    const size = memory.grid.chunkSizeM;
    const r = Math.ceil(radiusM / size) + 1;
    const cx = Math.floor(position[0]! / size);
    const cz = Math.floor(position[2]! / size);
    let loaded = 0;
    const rows = this.db
      .prepare(
        'SELECT chunk_key, cx, cz, data FROM chunks WHERE world_id = ? AND cx BETWEEN ? AND ? AND cz BETWEEN ? AND ?',
      )
      .all(worldId, cx - r, cx + r, cz - r, cz + r) as {
      chunk_key: number;
      cx: number;
      cz: number;
      data: Buffer;
    }[];
    for (const row of rows) {
      if (memory.grid.hasChunk(row.chunk_key)) continue;
      if (Math.hypot((row.cx + 0.5) * size - position[0]!, (row.cz + 0.5) * size - position[2]!) > radiusM)
        continue;
      const c = decodeChunk(new BinaryReader(new Uint8Array(row.data), 'STORE', 'stored chunk'));
      memory.grid.putChunk(c);
      s.chunks.set(c.key, c.revision);
      loaded++;
    }
    return loaded;
  }

  /** Bytes the store occupies on disk (database + WAL), for reporting. */
  sizeBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    return pages * pageSize;
  }

  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
}
