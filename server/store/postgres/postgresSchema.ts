import type pg from 'pg';
import { STORE_SCHEMA_VERSION } from '../schema.ts';

/**
 * The world store's tables in PostgreSQL. A PostgreSQL store begins at schema version 6, the
 * SQLite store's version with the same tables and columns (`schema.ts` says what each version
 * added); the version lives in `spatia_schema`. Later versions append a migration here and in
 * `schema.ts` alike. Blobs the store compresses itself (keyframes, snapshot parts) or that barely
 * compress (chunks) are kept out of PostgreSQL's own compression (`STORAGE EXTERNAL`).
 */
interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const V6 = `
CREATE TABLE worlds (
  id text PRIMARY KEY,
  prompt text NOT NULL,
  seed bigint NOT NULL,
  voxel_size double precision NOT NULL,
  scene text,
  invite_token text,
  owner_token_hash text,
  spawn text,
  edit_locked integer NOT NULL DEFAULT 0,
  lease_epoch bigint NOT NULL DEFAULT 0,
  created_at text NOT NULL
);
CREATE TABLE chunks (
  world_id text NOT NULL REFERENCES worlds(id),
  chunk_key bigint NOT NULL,
  cx integer NOT NULL, cy integer NOT NULL, cz integer NOT NULL,
  voxels integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (world_id, chunk_key)
);
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX chunks_xz ON chunks (world_id, cx, cz);
CREATE TABLE keyframes (
  world_id text NOT NULL REFERENCES worlds(id),
  id bigint NOT NULL,
  x double precision,
  z double precision,
  data bytea NOT NULL,
  PRIMARY KEY (world_id, id)
);
ALTER TABLE keyframes ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX keyframes_xz ON keyframes (world_id, x, z);
CREATE TABLE edits (
  world_id text NOT NULL REFERENCES worlds(id),
  seq bigint NOT NULL,
  author text NOT NULL,
  at text NOT NULL,
  op text NOT NULL,
  min_x double precision NOT NULL, min_y double precision NOT NULL, min_z double precision NOT NULL,
  max_x double precision NOT NULL, max_y double precision NOT NULL, max_z double precision NOT NULL,
  undone integer NOT NULL DEFAULT 0,
  PRIMARY KEY (world_id, seq)
);
CREATE TABLE sessions (
  id text PRIMARY KEY,
  world_id text NOT NULL,
  player text NOT NULL,
  model text NOT NULL,
  width integer NOT NULL, height integer NOT NULL, fps double precision NOT NULL,
  prompt text NOT NULL,
  seeded_from text,
  start_snapshot bytea NOT NULL,
  start_manifest bytea,
  start_erased text,
  started_at text NOT NULL,
  ended_at text
);
CREATE TABLE session_clips (
  session_id text NOT NULL REFERENCES sessions(id),
  idx integer NOT NULL,
  clip text NOT NULL,
  PRIMARY KEY (session_id, idx)
);
CREATE TABLE session_frames (
  session_id text NOT NULL REFERENCES sessions(id),
  idx integer NOT NULL,
  clip_idx integer NOT NULL,
  rgb_crc bigint NOT NULL,
  timings text NOT NULL,
  jpeg bytea NOT NULL,
  PRIMARY KEY (session_id, idx)
);
ALTER TABLE session_frames ALTER COLUMN jpeg SET STORAGE EXTERNAL;
CREATE TABLE snapshot_blobs (
  hash bytea PRIMARY KEY,
  raw_bytes bigint NOT NULL,
  data bytea NOT NULL
);
ALTER TABLE snapshot_blobs ALTER COLUMN data SET STORAGE EXTERNAL;
`;

const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  { version: 6, name: 'worlds, chunks, keyframes, edit logs, recorded sessions and lease epochs', sql: V6 },
];

/** The tables a Spatia store holds: a database with one of them and no version is not ours to touch. */
const STORE_TABLES: readonly string[] = [...V6.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]!);

/** Two nodes opening one new database at once: the second waits for the first's schema. */
const SCHEMA_LOCK = 0x5a71a;

/**
 * Brings the database to this build's schema (read-write), or checks that it can be read
 * (read-only). Refuses a store written by a newer Spatia, a database holding tables named like the
 * store's without a version, and (read-only) an empty one. Throws an Error whose message is for a
 * person; the caller makes it STORE.
 */
export async function openPostgresSchema(
  client: pg.ClientBase,
  name: string,
  readonly: boolean,
): Promise<void> {
  const latest = POSTGRES_MIGRATIONS.at(-1)!.version;
  if (latest !== STORE_SCHEMA_VERSION)
    throw new Error(
      `the PostgreSQL schema is at version ${latest}, the SQLite one at ${STORE_SCHEMA_VERSION}`,
    );
  await client.query('BEGIN');
  try {
    if (!readonly) await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    const versioned = (await client.query("SELECT to_regclass('spatia_schema') IS NOT NULL AS v")).rows[0].v;
    let version = 0;
    if (versioned) {
      const row = (await client.query('SELECT version FROM spatia_schema')).rows[0] as
        | { version: number }
        | undefined;
      version = row?.version ?? 0;
    }
    if (version > latest)
      throw new Error(
        `the world store ${name} has schema version ${version}, but this build of Spatia supports schema version ` +
          `${latest} at most: it was written by a newer Spatia. Upgrade Spatia to open it (the database was left unchanged).`,
      );
    if (version === 0) {
      const present = (
        await client.query(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
        )
      ).rows.map((r: { table_name: string }) => r.table_name);
      const clash = present.filter((t) => STORE_TABLES.includes(t));
      if (clash.length > 0)
        throw new Error(
          `${name} is not a Spatia world store: it has no schema version and holds tables named like the store's ` +
            `(${clash.join(', ')}). Point --store at a new database or at a Spatia world store.`,
        );
      if (readonly) throw new Error(`the world store ${name} is empty: it holds no worlds or sessions.`);
      await client.query('CREATE TABLE spatia_schema (version integer NOT NULL)');
      await client.query('INSERT INTO spatia_schema (version) VALUES (0)');
    }
    if (!readonly)
      for (const m of POSTGRES_MIGRATIONS) {
        if (m.version <= version) continue;
        try {
          await client.query(m.sql);
        } catch (e) {
          throw new Error(
            `cannot bring the world store ${name} to schema version ${m.version} (${m.name}): ${(e as Error).message}. ` +
              'The store was left as it was.',
          );
        }
        await client.query('UPDATE spatia_schema SET version = $1', [m.version]);
        version = m.version;
      }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
