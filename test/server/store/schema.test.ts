import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { encodeKeyframe } from '../../../server/memory/snapshot.ts';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { MIGRATIONS, migrate, STORE_SCHEMA_VERSION } from '../../../server/store/schema.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { BinaryWriter } from '../../../shared/codec/binaryWriter.ts';
import { SpatiaError } from '../../../shared/errors.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';

/** The tables exactly as every store written before schema versioning has them (frozen copy). */
const UNVERSIONED_WORLD_TABLES = `
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
`;
const UNVERSIONED_SESSION_TABLES = `
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

const tempStore = (): string => join(mkdtempSync(join(tmpdir(), 'spatia-schema-')), 'w.sqlite');

const OLD_WORLD = `INSERT INTO worlds (id, prompt, seed, voxel_size, scene, invite_token, created_at)
  VALUES ('old', 'an old world', 7, 0.05, 'room', NULL, '2026-01-01T00:00:00.000Z');`;
const OLD_CHUNK = `INSERT INTO chunks (world_id, chunk_key, cx, cy, cz, voxels, data)
  VALUES ('old', 42, 1, 2, 3, 9, x'010203');`;

/** Writes a store the way a build from before versioning did (WAL, user_version 0), with one world. */
function unversionedStore(
  path: string,
  tables = UNVERSIONED_WORLD_TABLES + UNVERSIONED_SESSION_TABLES,
  rows = OLD_WORLD + OLD_CHUNK,
): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(tables);
  db.exec(rows);
  db.close();
}

/** The file's version, schema and every row of every table. */
function inspect(path: string): { version: number; schema: string[]; rows: Record<string, unknown[]> } {
  const db = new Database(path, { readonly: true });
  const version = db.pragma('user_version', { simple: true }) as number;
  const entries = db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all() as {
    type: string;
    name: string;
    sql: string | null;
  }[];
  const schema = entries.map((r) => `${r.type} ${r.name}: ${r.sql}`);
  const rows: Record<string, unknown[]> = {};
  for (const { type, name } of entries)
    if (type === 'table') rows[name] = db.prepare(`SELECT * FROM "${name}"`).all();
  db.close();
  return { version, schema, rows };
}

function thrown(f: () => unknown): SpatiaError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpatiaError);
    return e as SpatiaError;
  }
  throw new Error('expected a SpatiaError');
}

describe('world store schema version', () => {
  it('gives a new store the latest version and exactly the schema stores had before versioning', () => {
    const fresh = tempStore();
    new WorldStore(fresh).close();
    const old = tempStore();
    unversionedStore(old);
    expect(inspect(fresh).version).toBe(STORE_SCHEMA_VERSION);
    expect(STORE_SCHEMA_VERSION).toBe(MIGRATIONS.length);
    // Version 1 is exactly the schema from before versioning; later versions only add to it.
    const v1 = new Database(':memory:');
    migrate(v1, 'v1', MIGRATIONS.slice(0, 1));
    const v1Schema = (
      v1.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all() as {
        type: string;
        name: string;
        sql: string | null;
      }[]
    ).map((r) => `${r.type} ${r.name}: ${r.sql}`);
    v1.close();
    expect(v1Schema).toEqual(inspect(old).schema);
    new WorldStore(old).close();
    expect(inspect(fresh).schema).toEqual(inspect(old).schema);
  });

  it('adopts a store written before versioning as version 1, keeping its data', () => {
    const path = tempStore();
    unversionedStore(path);
    const before = inspect(path);
    expect(before.version).toBe(0);

    // Read-only it is read as version 1 and left alone.
    const bytes = readFileSync(path);
    const ro = new WorldStore(path, { readonly: true });
    expect(ro.getWorld('old')).toMatchObject({ prompt: 'an old world', seed: 7, scene: 'room' });
    ro.close();
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(inspect(path).version).toBe(0);

    const store = new WorldStore(path);
    expect(store.getWorld('old')).toMatchObject({
      id: 'old',
      prompt: 'an old world',
      seed: 7,
      voxelSizeM: 0.05,
      scene: 'room',
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    expect(store.listWorlds()).toEqual(['old']);
    store.close();
    const after = inspect(path);
    expect(after.version).toBe(STORE_SCHEMA_VERSION);
    const fresh = tempStore();
    new WorldStore(fresh).close();
    expect(after.schema).toEqual(inspect(fresh).schema);
    expect(after.rows).toEqual({
      ...before.rows,
      // Columns later versions added, empty for old rows.
      worlds: before.rows.worlds!.map((w) => ({
        ...(w as object),
        owner_token_hash: null,
        spawn: null,
        edit_locked: 0,
        lease_epoch: 0,
      })),
      snapshot_blobs: [],
      edits: [],
    });
    expect(after.rows.chunks).toHaveLength(1);
    new WorldStore(path).close(); // opening again changes nothing
    expect(inspect(path)).toEqual(after);
  });

  it('gives a store from before session recording its session tables; read-only asks for an upgrade', () => {
    const path = tempStore();
    unversionedStore(path, UNVERSIONED_WORLD_TABLES);
    const e = thrown(() => new WorldStore(path, { readonly: true }));
    expect(e.code).toBe('STORE');
    expect(e.message).toMatch(/schema version 0.*reads schema version 1.*read-write once/);
    expect(inspect(path).version).toBe(0);
    const store = new WorldStore(path);
    expect(store.sessions.listSessions()).toEqual([]);
    expect(store.getWorld('old')?.prompt).toBe('an old world');
    store.close();
    expect(inspect(path).version).toBe(STORE_SCHEMA_VERSION);
    new WorldStore(path, { readonly: true }).close();
  });

  it('refuses a store from a newer Spatia and leaves the file byte-identical', () => {
    const path = tempStore();
    new WorldStore(path).close();
    const db = new Database(path);
    db.pragma('journal_mode = DELETE'); // so that even a journal-mode switch would show in the bytes
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 1}`);
    db.exec('CREATE TABLE from_the_future (x INTEGER)');
    db.close();
    const bytes = readFileSync(path);
    for (const opts of [{}, { readonly: true }]) {
      const e = thrown(() => new WorldStore(path, opts));
      expect(e.code).toBe('STORE');
      expect(e.message).toContain(`schema version ${STORE_SCHEMA_VERSION + 1}`);
      expect(e.message).toContain(`schema version ${STORE_SCHEMA_VERSION} at most`);
      expect(e.message).toMatch(/Upgrade Spatia/);
      expect(readFileSync(path).equals(bytes)).toBe(true);
      // Nothing pending in a WAL either (a read-only open leaves an empty one behind: SQLite's doing).
      expect(!existsSync(`${path}-wal`) || statSync(`${path}-wal`).size === 0).toBe(true);
    }
  });

  it('refuses an unversioned SQLite file that is not a world store, without touching it', () => {
    const path = tempStore();
    const db = new Database(path);
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)');
    db.close();
    const bytes = readFileSync(path);
    for (const opts of [{}, { readonly: true }]) {
      const e = thrown(() => new WorldStore(path, opts));
      expect(e.code).toBe('STORE');
      expect(e.message).toMatch(/not a Spatia world store.*invoices/);
      expect(readFileSync(path).equals(bytes)).toBe(true);
    }
  });

  it('rolls back a migration that fails and leaves the store at the version before it', () => {
    // Through the real open: an unversioned store whose chunks table lacks the indexed columns.
    const path = tempStore();
    unversionedStore(
      path,
      `${UNVERSIONED_WORLD_TABLES.split('CREATE TABLE IF NOT EXISTS chunks')[0]}
       CREATE TABLE chunks (world_id TEXT, chunk_key INTEGER, voxels INTEGER, data BLOB);`,
      `${OLD_WORLD} INSERT INTO chunks VALUES ('old', 42, 9, x'010203');`,
    );
    const before = inspect(path);
    const e = thrown(() => new WorldStore(path));
    expect(e.code).toBe('STORE');
    expect(e.message).toMatch(
      /cannot upgrade the world store .* from schema version 0 to 1 .*no such column/,
    );
    expect(e.message).toMatch(/left at version 0/);
    expect(inspect(path)).toEqual(before); // no keyframes or session tables half-created

    // A later migration failing halfway: its first statement is undone too.
    const db = new Database(tempStore());
    const broken = [
      ...MIGRATIONS,
      { name: 'broken', sql: 'CREATE TABLE extra (x INTEGER); INSERT INTO missing VALUES (1);' },
    ];
    const v = STORE_SCHEMA_VERSION;
    expect(() => migrate(db, 'test.sqlite', broken)).toThrow(
      `from schema version ${v} to ${v + 1} (broken): no such table: missing. The store was left at version ${v}`,
    );
    expect(db.pragma('user_version', { simple: true })).toBe(v);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'extra'").all()).toEqual([]);
    db.close();
  });

  it('version 3 gives stored keyframes their camera position; a world then loads near its spawn', () => {
    const path = tempStore();
    const v2 = new Database(path);
    migrate(v2, path, MIGRATIONS.slice(0, 2));
    v2.exec(OLD_WORLD);
    const keyframe = (id: number, x: number, z: number): Buffer => {
      const pose = poseFromYawPitch([x, 1.7, z], 0, 0);
      const memory = SpatialMemory.create(0.05);
      const kf = memory.addKeyframe(renderScene(sceneNamed('room'), pose, K256), pose, K256);
      const w = new BinaryWriter();
      encodeKeyframe(w, { ...kf, id });
      return deflateRawSync(w.finish());
    };
    const put = v2.prepare("INSERT INTO keyframes (world_id, id, data) VALUES ('old', ?, ?)");
    put.run(0, keyframe(0, 1, 2));
    put.run(1, keyframe(1, 80, -40));
    put.run(2, Buffer.from('not a keyframe'));
    v2.close();
    const store = new WorldStore(path);
    const spawn = { position: [0, 1.7, 0] as const, radiusM: 30 };
    expect(() => store.loadMemory('old', 0.05, spawn)).toThrow(/world "old" is damaged .*keyframe 2/);
    store.close();
    const rows = new Database(path, { readonly: true })
      .prepare('SELECT id, x, z FROM keyframes ORDER BY id')
      .all();
    expect(rows).toEqual([
      { id: 0, x: 1, z: 2 },
      { id: 1, x: 80, z: -40 },
      { id: 2, x: null, z: null }, // unreadable: reported when its world loads
    ]);
    const db = new Database(path);
    db.prepare('DELETE FROM keyframes WHERE id = 2').run();
    db.close();
    const repaired = new WorldStore(path);
    expect(
      repaired
        .loadMemory('old', 0.05, spawn)
        .keyframes.all()
        .map((k) => k.id),
    ).toEqual([0]);
    repaired.close();
  });
});
