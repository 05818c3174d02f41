import type { SqlValue } from './storeDb.ts';
import type { WriteOp } from './writeBatch.ts';

/**
 * The store's writes, in the SQL that SQLite and PostgreSQL both take (`?` placeholders; the
 * PostgreSQL thread numbers them). One home for the rows each write op becomes: the SQLite writer
 * thread and the PostgreSQL one differ only in how they run them (and in the checks around
 * sessions, snapshot blobs and fences, which read first).
 */
export const WRITE_SQL = {
  world: `INSERT INTO worlds (id, prompt, seed, voxel_size, scene, invite_token, owner_token_hash, spawn, edit_locked, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET prompt = excluded.prompt, invite_token = excluded.invite_token,
      owner_token_hash = excluded.owner_token_hash, edit_locked = excluded.edit_locked`,
  chunk: `INSERT INTO chunks (world_id, chunk_key, cx, cy, cz, voxels, data) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (world_id, chunk_key) DO UPDATE SET voxels = excluded.voxels, data = excluded.data`,
  keyframe: `INSERT INTO keyframes (world_id, id, x, z, data) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (world_id, id) DO UPDATE SET x = excluded.x, z = excluded.z, data = excluded.data`,
  edit: `INSERT INTO edits (world_id, seq, author, at, op, min_x, min_y, min_z, max_x, max_y, max_z, undone)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (world_id, seq) DO UPDATE SET author = excluded.author, at = excluded.at, op = excluded.op,
      min_x = excluded.min_x, min_y = excluded.min_y, min_z = excluded.min_z,
      max_x = excluded.max_x, max_y = excluded.max_y, max_z = excluded.max_z, undone = excluded.undone`,
  hasKeyframe: 'SELECT 1 FROM keyframes WHERE world_id = ? AND id = ?',
  hasBlob: 'SELECT 1 FROM snapshot_blobs WHERE hash = ?',
  blob: 'INSERT INTO snapshot_blobs (hash, raw_bytes, data) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING',
  session: `INSERT INTO sessions (id, world_id, player, model, width, height, fps, prompt, seeded_from,
      start_snapshot, start_manifest, start_erased, started_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  clip: `INSERT INTO session_clips (session_id, idx, clip) VALUES (?, ?, ?)
    ON CONFLICT (session_id, idx) DO UPDATE SET clip = excluded.clip`,
  frame: `INSERT INTO session_frames (session_id, idx, clip_idx, rgb_crc, timings, jpeg) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id, idx) DO UPDATE SET clip_idx = excluded.clip_idx, rgb_crc = excluded.rgb_crc,
      timings = excluded.timings, jpeg = excluded.jpeg`,
  end: 'UPDATE sessions SET ended_at = ? WHERE id = ?',
  setLeaseEpoch: 'UPDATE worlds SET lease_epoch = ? WHERE id = ?',
} as const;

const EMPTY = new Uint8Array(0);

/**
 * The parameters of the row an op writes, in `WRITE_SQL[op.t]`'s order. `data` is the op's stored
 * bytes where the writer deflates them first (keyframes, blobs).
 */
export function rowOf(op: WriteOp, data?: Uint8Array): SqlValue[] {
  switch (op.t) {
    case 'world':
      return [
        op.id,
        op.prompt,
        op.seed,
        op.voxelSizeM,
        op.scene,
        op.inviteToken,
        op.ownerTokenHash,
        op.spawn,
        op.editLocked,
        op.createdAt,
      ];
    case 'chunk':
      return [op.world, op.key, op.cx, op.cy, op.cz, op.voxels, op.data];
    case 'keyframe':
      return [op.world, op.id, op.x, op.z, data ?? EMPTY];
    case 'edit':
      return [op.world, op.seq, op.author, op.at, op.op, ...op.bounds, op.undone];
    case 'blob':
      return [op.hash, op.raw.byteLength, data ?? EMPTY];
    case 'session':
      return [
        op.id,
        op.worldId,
        op.player,
        op.model,
        op.width,
        op.height,
        op.fps,
        op.prompt,
        op.seededFrom,
        EMPTY, // start_snapshot: sessions recorded since schema v2 keep a manifest instead
        op.manifest,
        op.erased,
        op.startedAt,
      ];
    case 'clip':
      return [op.session, op.idx, op.clip];
    case 'frame':
      return [op.session, op.idx, op.clipIdx, op.rgbCrc, op.timings, op.jpeg];
    case 'end':
      return [op.at, op.session];
    case 'fence':
      return [op.epoch, op.world];
    case 'checkpoint':
      return [];
  }
}

/** Bytes of row data an op adds (after compression), for the writer's acknowledgement. */
export function rowBytes(op: WriteOp, data?: Uint8Array): number {
  switch (op.t) {
    case 'chunk':
      return op.data.byteLength;
    case 'keyframe':
    case 'blob':
      return data?.byteLength ?? 0;
    case 'edit':
      return op.op.length;
    case 'session':
      return op.manifest.byteLength;
    case 'clip':
      return op.clip.length;
    case 'frame':
      return op.jpeg.byteLength;
    default:
      return 0;
  }
}

/** Why a fenced batch was refused (the message starts with `FENCED`). */
export const fencedMessage = (world: string, stored: number, epoch: number): string =>
  `world "${world}" was committed under lease epoch ${stored}, this batch holds ${epoch}`;
