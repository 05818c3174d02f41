import { inflateRawSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import { BinaryReader } from '../../shared/codec/binaryWriter.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { keyframeCameraPosition } from '../memory/snapshot.ts';

/**
 * The world store's schema as an ordered list of forward migrations. Migration i (1-based) takes a
 * store from schema version i − 1 to i; the version lives in the file as `PRAGMA user_version`.
 * Migrations are append-only: never edit one that has shipped, add the next instead. They run with
 * `foreign_keys = ON` (the store's setting, which cannot change inside a transaction): a migration
 * that rebuilds a referenced table must keep the references valid at every statement.
 */
export interface Migration {
  /** What it changes, for error messages. */
  readonly name: string;
  /** Run in one transaction together with the `user_version` bump. */
  readonly sql: string;
  /** Fills what SQL cannot compute (e.g. from blobs), after `sql`, in the same transaction. */
  readonly backfill?: (db: Database.Database) => void;
}

/**
 * Version 1: the schema as it was before stores carried a version. Its statements keep
 * `IF NOT EXISTS` so that a store written before versioning (user_version 0, same tables) is adopted
 * as version 1 without touching its rows; a store from before session recording gains the session
 * tables, as every open used to give it.
 */
const V1 = `
CREATE TABLE IF NOT EXISTS worlds (
  id TEXT PRIMARY KEY,
  prompt TEXT NOT NULL,
  seed INTEGER NOT NULL,
  voxel_size REAL NOT NULL,
  scene TEXT,
  invite_token TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  world_id TEXT NOT NULL REFERENCES worlds(id),
  chunk_key INTEGER NOT NULL,
  cx INTEGER NOT NULL, cy INTEGER NOT NULL, cz INTEGER NOT NULL,
  voxels INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (world_id, chunk_key)
);
CREATE INDEX IF NOT EXISTS chunks_xz ON chunks (world_id, cx, cz);
CREATE TABLE IF NOT EXISTS keyframes (
  world_id TEXT NOT NULL REFERENCES worlds(id),
  id INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (world_id, id)
);

CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  world_id TEXT NOT NULL,
  player TEXT NOT NULL,
  model TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, fps REAL NOT NULL,
  prompt TEXT NOT NULL,
  seeded_from TEXT,
  start_snapshot BLOB NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE TABLE IF NOT EXISTS session_clips (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  idx INTEGER NOT NULL,
  clip TEXT NOT NULL,
  PRIMARY KEY (session_id, idx)
);
CREATE TABLE IF NOT EXISTS session_frames (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  idx INTEGER NOT NULL,
  clip_idx INTEGER NOT NULL,
  rgb_crc INTEGER NOT NULL,
  timings TEXT NOT NULL,
  jpeg BLOB NOT NULL,
  PRIMARY KEY (session_id, idx)
);
`;

/**
 * Version 2: a session's start snapshot as parts instead of one copy of the world per recording.
 * `start_manifest` lists the parts (see `sessionLog.ts`); chunk parts live in `snapshot_blobs`,
 * deflated and addressed by their SHA-256, so a part shared by many recordings is stored once;
 * keyframe parts are the rows of `keyframes` (a keyframe never changes). Sessions recorded before
 * keep their `start_snapshot`. Worlds gain the SHA-256 of their owner's token (who may rotate the
 * invite token).
 */
const V2 = `
CREATE TABLE snapshot_blobs (
  hash BLOB PRIMARY KEY,
  raw_bytes INTEGER NOT NULL,
  data BLOB NOT NULL
);
ALTER TABLE sessions ADD COLUMN start_manifest BLOB;
ALTER TABLE worlds ADD COLUMN owner_token_hash TEXT;
`;

/**
 * Version 3: keyframes carry their camera's horizontal position (`x`, `z`), so a world keeps in RAM
 * only the keyframes near its players and brings the others back by a range query, as it does for
 * chunks. Existing rows are filled from their pose; a row that cannot be decoded keeps NULL (and is
 * reported as damaged when its world loads).
 */
const V3 = `
ALTER TABLE keyframes ADD COLUMN x REAL;
ALTER TABLE keyframes ADD COLUMN z REAL;
CREATE INDEX keyframes_xz ON keyframes (world_id, x, z);
`;

/** Version 4: a world may name where players appear (imported captures: the first camera, pitch included). */
const V4 = `
ALTER TABLE worlds ADD COLUMN spawn TEXT;
`;

/**
 * Version 5: each world's edit log (one row per edit: who, when, the operation as JSON, its bounds,
 * whether it is undone), whether the world's creator locked editing, and the regions a recorded
 * session's world had erased when it started (JSON; replay keeps them empty too).
 */
const V5 = `
CREATE TABLE edits (
  world_id TEXT NOT NULL REFERENCES worlds(id),
  seq INTEGER NOT NULL,
  author TEXT NOT NULL,
  at TEXT NOT NULL,
  op TEXT NOT NULL,
  min_x REAL NOT NULL, min_y REAL NOT NULL, min_z REAL NOT NULL,
  max_x REAL NOT NULL, max_y REAL NOT NULL, max_z REAL NOT NULL,
  undone INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (world_id, seq)
);
ALTER TABLE worlds ADD COLUMN edit_locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN start_erased TEXT;
`;

/**
 * Version 6: the fencing token of the last commit of each world (clustered mode: the world lease's
 * epoch, which grows with every new lease). A commit carrying a lower one comes from a node that
 * lost the world, and is refused whole.
 */
const V6 = `
ALTER TABLE worlds ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
`;

/** A stored (deflated) keyframe's camera position; undefined when the row cannot be read. */
function keyframePosition(data: Buffer): Vec3 | undefined {
  try {
    const p = keyframeCameraPosition(new BinaryReader(inflateRawSync(data), 'STORE', 'stored keyframe'));
    return p.every(Number.isFinite) ? p : undefined;
  } catch {
    return undefined;
  }
}

function backfillKeyframePositions(db: Database.Database): void {
  const set = db.prepare('UPDATE keyframes SET x = ?, z = ? WHERE rowid = ?');
  const rows = db.prepare('SELECT rowid, data FROM keyframes').iterate() as Iterable<{
    rowid: number;
    data: Buffer;
  }>;
  for (const row of [...rows]) {
    const position = keyframePosition(row.data);
    if (position) set.run(position[0], position[2], row.rowid);
  }
}

export const MIGRATIONS: readonly Migration[] = [
  { name: 'worlds, chunks, keyframes and recorded sessions', sql: V1 },
  { name: 'session start snapshots as deduplicated parts; world owner token hash', sql: V2 },
  {
    name: 'keyframe positions for loading keyframes near players',
    sql: V3,
    backfill: backfillKeyframePositions,
  },
  { name: 'a world spawn for imported captures', sql: V4 },
  { name: 'edit logs and the editing lock', sql: V5 },
  { name: 'the lease epoch of each world’s last commit (clustered nodes)', sql: V6 },
];

/** The schema version this build reads and writes: the number of migrations. */
export const STORE_SCHEMA_VERSION = MIGRATIONS.length;

/** Tables a store written before versioning may hold (version 1's). */
const UNVERSIONED_TABLES: readonly string[] = [...V1.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)/g)].map(
  (m) => m[1]!,
);

function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function tables(db: Database.Database): string[] {
  return (
    db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
      )
      .all() as { name: string }[]
  ).map((r) => r.name);
}

/**
 * Refuses a store written by a newer Spatia (user_version above `latest`) and an unversioned SQLite
 * file that is not a world store. Reads only, so it runs before anything (even the journal mode) is
 * written to the file: a refused file is left byte-identical.
 */
export function refuseUnknownStore(db: Database.Database, path: string, latest = STORE_SCHEMA_VERSION): void {
  const found = userVersion(db);
  if (found > latest) throw refuseNewer(path, found, latest);
  if (found === 0) refuseForeign(db, path);
}

function refuseNewer(path: string, found: number, latest: number): SpatiaError {
  return new SpatiaError(
    'STORE',
    `the world store ${path} has schema version ${found}, but this build of Spatia supports schema version ` +
      `${latest} at most: it was written by a newer Spatia. Upgrade Spatia to open it (the file was left unchanged).`,
  );
}

/** Version 0 is a new file or a store from before versioning; anything else unversioned is not ours. */
function refuseForeign(db: Database.Database, path: string): void {
  const foreign = tables(db).filter((t) => !UNVERSIONED_TABLES.includes(t));
  if (foreign.length > 0)
    throw new SpatiaError(
      'STORE',
      `${path} is not a Spatia world store: it has no schema version and holds tables Spatia does not ` +
        `use (${foreign.join(', ')}). Point --store at a new file or at a Spatia world store.`,
    );
}

/**
 * Brings a store opened read-write to the latest schema version: refuses an unknown one (see
 * `refuseUnknownStore`), then runs each pending migration in its own transaction
 * (BEGIN IMMEDIATE, so two processes opening one store do not both migrate it). A migration that
 * fails rolls back and leaves the store at the version before it.
 */
export function migrate(
  db: Database.Database,
  path: string,
  migrations: readonly Migration[] = MIGRATIONS,
): void {
  const latest = migrations.length;
  refuseUnknownStore(db, path, latest);
  for (let version = userVersion(db) + 1; version <= latest; version++) {
    const migration = migrations[version - 1]!;
    db.transaction(() => {
      // Another process may have migrated meanwhile (we waited for its write lock).
      const now = userVersion(db);
      if (now > latest) throw refuseNewer(path, now, latest);
      if (now >= version) return;
      if (now === 0) refuseForeign(db, path);
      try {
        db.exec(migration.sql);
        migration.backfill?.(db);
      } catch (e) {
        throw new SpatiaError(
          'STORE',
          `cannot upgrade the world store ${path} from schema version ${version - 1} to ${version} ` +
            `(${migration.name}): ${(e as Error).message}. The store was left at version ${version - 1}.`,
        );
      }
      db.pragma(`user_version = ${version}`);
    }).immediate();
  }
}

/**
 * The oldest schema version this build reads without upgrading: version 2 only added a table and a
 * nullable column that the read paths treat as absent (a version-1 session keeps its
 * `start_snapshot`), so a version-1 store can be read (replayed, exported) read-only.
 */
const READ_ONLY_MIN_VERSION = 1;

/**
 * Checks that a store opened read-only can be read by this build, writing nothing. A store from
 * before versioning that holds every version-1 table reads as version 1. A store older than
 * `READ_ONLY_MIN_VERSION` is refused: it must be opened read-write once to be upgraded.
 */
export function checkReadable(db: Database.Database, path: string, latest = STORE_SCHEMA_VERSION): void {
  refuseUnknownStore(db, path, latest);
  const found = userVersion(db);
  let version = found;
  if (found === 0) {
    const present = tables(db);
    if (present.length === 0)
      throw new SpatiaError('STORE', `the world store ${path} is empty: it holds no worlds or sessions.`);
    if (UNVERSIONED_TABLES.every((t) => present.includes(t))) version = 1;
  }
  const min = Math.min(READ_ONLY_MIN_VERSION, latest);
  if (version < min)
    throw new SpatiaError(
      'STORE',
      `the world store ${path} has schema version ${found}; this build of Spatia reads schema version ` +
        `${min} to ${latest} and does not upgrade a store opened read-only. Open it read-write once to upgrade it ` +
        `(for example \`npm run world -- list --store ${path}\`, or start the server on it), then retry.`,
    );
}
