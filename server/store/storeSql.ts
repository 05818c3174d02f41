import type { SqlValue } from './storeDb.ts';
import type { WriteOp } from './writeBatch.ts';

/**
 * The rows the store writes, described once: the SQLite writer thread and the PostgreSQL one both
 * build their statements from these (one row per statement in SQLite, where a statement costs
 * microseconds; one statement per run of rows in PostgreSQL, where each costs a round trip).
 */
interface RowShape {
  readonly table: string;
  readonly columns: readonly string[];
  /** PostgreSQL's type of each column (the arrays a bulk insert unnests). */
  readonly pgTypes: readonly string[];
  /** The primary key: a row with the same key replaces the stored one's `update` columns. */
  readonly key: readonly string[];
  /** Columns a new row replaces (default: all but the key); empty: a stored row is kept. */
  readonly update?: readonly string[];
}

export const ROWS = {
  world: {
    table: 'worlds',
    columns: [
      'id',
      'prompt',
      'seed',
      'voxel_size',
      'scene',
      'invite_token',
      'owner_token_hash',
      'spawn',
      'edit_locked',
      'created_at',
    ],
    pgTypes: ['text', 'text', 'int8', 'float8', 'text', 'text', 'text', 'text', 'int4', 'text'],
    key: ['id'],
    // A world's seed, voxel size, scene, spawn and birth never change.
    update: ['prompt', 'invite_token', 'owner_token_hash', 'edit_locked'],
  },
  chunk: {
    table: 'chunks',
    columns: ['world_id', 'chunk_key', 'cx', 'cy', 'cz', 'voxels', 'data'],
    pgTypes: ['text', 'int8', 'int4', 'int4', 'int4', 'int4', 'bytea'],
    key: ['world_id', 'chunk_key'],
  },
  keyframe: {
    table: 'keyframes',
    columns: ['world_id', 'id', 'x', 'z', 'data'],
    pgTypes: ['text', 'int8', 'float8', 'float8', 'bytea'],
    key: ['world_id', 'id'],
  },
  edit: {
    table: 'edits',
    columns: [
      'world_id',
      'seq',
      'author',
      'at',
      'op',
      'min_x',
      'min_y',
      'min_z',
      'max_x',
      'max_y',
      'max_z',
      'undone',
    ],
    pgTypes: [
      'text',
      'int8',
      'text',
      'text',
      'text',
      'float8',
      'float8',
      'float8',
      'float8',
      'float8',
      'float8',
      'int4',
    ],
    key: ['world_id', 'seq'],
  },
  blob: {
    table: 'snapshot_blobs',
    columns: ['hash', 'raw_bytes', 'data'],
    pgTypes: ['bytea', 'int8', 'bytea'],
    key: ['hash'],
    update: [], // content-addressed: written once
  },
  session: {
    table: 'sessions',
    columns: [
      'id',
      'world_id',
      'player',
      'model',
      'width',
      'height',
      'fps',
      'prompt',
      'seeded_from',
      'start_snapshot',
      'start_manifest',
      'start_erased',
      'started_at',
    ],
    pgTypes: [
      'text',
      'text',
      'text',
      'text',
      'int4',
      'int4',
      'float8',
      'text',
      'text',
      'bytea',
      'bytea',
      'text',
      'text',
    ],
    key: ['id'],
  },
  clip: {
    table: 'session_clips',
    columns: ['session_id', 'idx', 'clip'],
    pgTypes: ['text', 'int4', 'text'],
    key: ['session_id', 'idx'],
  },
  frame: {
    table: 'session_frames',
    columns: ['session_id', 'idx', 'clip_idx', 'rgb_crc', 'timings', 'jpeg'],
    pgTypes: ['text', 'int4', 'int4', 'int8', 'text', 'bytea'],
    key: ['session_id', 'idx'],
  },
} as const satisfies Record<string, RowShape>;

export type RowKind = keyof typeof ROWS;

function onConflict(shape: RowShape): string {
  const update = shape.update ?? shape.columns.filter((c) => !shape.key.includes(c));
  const target = `ON CONFLICT (${shape.key.join(', ')})`;
  return update.length === 0
    ? `${target} DO NOTHING`
    : `${target} DO UPDATE SET ${update.map((c) => `${c} = excluded.${c}`).join(', ')}`;
}

/** One row's upsert (`?` placeholders, the columns' order). */
export function insertSql(kind: RowKind): string {
  const shape: RowShape = ROWS[kind];
  return `INSERT INTO ${shape.table} (${shape.columns.join(', ')}) VALUES (${shape.columns.map(() => '?').join(', ')}) ${onConflict(shape)}`;
}

/**
 * PostgreSQL: `rows` rows' upsert in one statement (`$n` placeholders, row after row). Blobs travel
 * as binary parameters this way (an array parameter would send them as hex text).
 */
export function bulkInsertSql(kind: RowKind, rows: number): string {
  const shape: RowShape = ROWS[kind];
  const n = shape.columns.length;
  const values = Array.from(
    { length: rows },
    (_, r) => `(${shape.pgTypes.map((t, c) => `$${r * n + c + 1}::${t}`).join(', ')})`,
  ).join(', ');
  return `INSERT INTO ${shape.table} (${shape.columns.join(', ')}) VALUES ${values} ${onConflict(shape)}`;
}

/** Statements around the rows: the checks the writers make and the updates that are not upserts. */
export const CHECK_SQL = {
  hasKeyframe: 'SELECT 1 FROM keyframes WHERE world_id = ? AND id = ?',
  hasBlob: 'SELECT 1 FROM snapshot_blobs WHERE hash = ?',
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
