import { type ChildProcess, spawn } from 'node:child_process';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { STORE_SCHEMA_VERSION } from '../../../server/store/schema.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import type { SpatiaError } from '../../../shared/errors.ts';
import { Bot, sleep } from '../../helpers/bot.ts';
import { K256, sceneNamed } from '../../helpers/groundTruth.ts';
import { type TestPostgres, testPostgres } from '../../helpers/postgres.ts';
import { startTestServer } from '../../helpers/server.ts';
import { chunkBytes, storeError, testWorld } from '../../helpers/storeFixtures.ts';

/** What only PostgreSQL has: a schema in a shared database, and a server that can go away mid-run. */

let server: TestPostgres | undefined;
beforeAll(async () => {
  server = await testPostgres();
  if (!server) console.warn('skipped: PostgreSQL is not installed here (apt-get install postgresql)');
});
afterAll(async () => server?.stop());

async function sql(url: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

function viewFrom(x: number): SpatialMemory {
  const memory = SpatialMemory.create(0.05);
  const pose = poseFromYawPitch([x, 1.7, 6], 0, -0.1);
  memory.fuse(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
  memory.addKeyframe(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
  return memory;
}

/** The message of the STORE_UNAVAILABLE error `f` throws. */
function unavailable(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect((e as SpatiaError).code).toBe('STORE_UNAVAILABLE');
    return (e as Error).message;
  }
  throw new Error('expected STORE_UNAVAILABLE');
}

/**
 * A TCP hop between the store and PostgreSQL that can drop every connection and refuse new ones.
 * In a process of its own: the store's reads block this thread while they wait for PostgreSQL.
 */
const HOP = `
const net = require('node:net');
const [target, port] = process.argv.slice(1).map(Number);
const server = net.createServer((client) => {
  const upstream = net.connect(target, '127.0.0.1');
  for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => { client.destroy(); upstream.destroy(); });
  client.pipe(upstream).pipe(client);
});
server.listen(port, '127.0.0.1', () => console.log(server.address().port));
`;

class Hop {
  private child: ChildProcess | undefined;
  port = 0;
  constructor(private readonly target: number) {}
  async up(): Promise<number> {
    const child = spawn(process.execPath, ['-e', HOP, String(this.target), String(this.port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.child = child;
    this.port = Number(
      await new Promise<string>((resolve) =>
        child.stdout!.once('data', (d: Buffer) => resolve(d.toString())),
      ),
    );
    return this.port;
  }
  async down(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGKILL');
    });
  }
}

describe('the world store on PostgreSQL', () => {
  it('gives a new database the schema version and tables; refuses a newer store and one holding foreign tables, leaving them unchanged', async (ctx) => {
    if (!server) return ctx.skip();
    const url = await server.database();
    expect(storeError(() => new WorldStore(url, { readonly: true })).message).toMatch(/is empty/);
    new WorldStore(url).close();
    expect(await sql(url, 'SELECT version FROM spatia_schema')).toEqual([{ version: STORE_SCHEMA_VERSION }]);
    const tables = (
      await sql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    )
      .map((r) => r.table_name)
      .sort();
    expect(tables).toEqual([
      'chunks',
      'edits',
      'keyframes',
      'session_clips',
      'session_frames',
      'sessions',
      'snapshot_blobs',
      'spatia_schema',
      'worlds',
    ]);
    new WorldStore(url).close(); // opening again changes nothing

    await sql(url, `UPDATE spatia_schema SET version = ${STORE_SCHEMA_VERSION + 1}`);
    for (const opts of [{}, { readonly: true }])
      expect(storeError(() => new WorldStore(url, opts)).message).toMatch(
        new RegExp(`schema version ${STORE_SCHEMA_VERSION + 1}.*newer Spatia`),
      );
    expect(await sql(url, 'SELECT version FROM spatia_schema')).toEqual([
      { version: STORE_SCHEMA_VERSION + 1 },
    ]);

    const foreign = await server.database();
    await sql(foreign, 'CREATE TABLE worlds (name text)');
    expect(storeError(() => new WorldStore(foreign)).message).toMatch(/is not a Spatia world store.*worlds/);
    expect(
      await sql(foreign, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"),
    ).toEqual([{ table_name: 'worlds' }]);
  });

  it('nodes opening one new database at the same moment: one creates the schema, the others wait for it and open it', async (ctx) => {
    if (!server) return ctx.skip();
    const url = await server.database();
    const outputs = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<string>((resolve) => {
            const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/openStore.ts', url], {
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            child.stdout!.on('data', (d: Buffer) => {
              out += d.toString();
            });
            child.stderr!.on('data', (d: Buffer) => {
              out += d.toString();
            });
            child.once('exit', (code) => resolve(`${code}: ${out.trim()}`));
          }),
      ),
    );
    expect(outputs).toEqual(['0: opened', '0: opened', '0: opened']);
    expect(await sql(url, 'SELECT version FROM spatia_schema')).toEqual([{ version: STORE_SCHEMA_VERSION }]);
  });

  it('PostgreSQL going away mid-run: health says so, commits are kept in RAM, and once it is back they are written, losing nothing', async (ctx) => {
    if (!server) return ctx.skip();
    const direct = await server.database();
    const target = Number(new URL(direct).port);
    const hop = new Hop(target);
    const viaHop = (port: number): string => {
      const u = new URL(direct);
      u.port = String(port);
      return u.toString();
    };
    const url = viaHop(await hop.up());
    const errors: string[] = [];
    const store = new WorldStore(url, { log: { warn: () => {}, error: (_o, msg) => errors.push(msg) } });
    try {
      store.upsertWorld(testWorld('w'));
      const memory = viewFrom(0);
      store.commit('w', memory);
      await store.flush();
      expect(store.health().ok).toBe(true);

      await hop.down();
      const more = viewFrom(4);
      for (const c of more.grid.chunks()) if (!memory.grid.hasChunk(c.key)) memory.grid.putChunk(c);
      const pose = poseFromYawPitch([4, 1.7, 6], 0, -0.1);
      memory.fuse(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
      memory.addKeyframe(renderScene(sceneNamed('courtyard'), pose, K256), pose, K256);
      store.commit('w', memory);
      await store.flush();
      const down = store.health();
      expect(down.ok).toBe(false);
      expect(down.reason).toMatch(/writing the world store postgres:\/\/.* failed/);
      expect(down.pendingBytes).toBeGreaterThan(0);
      expect(errors.length).toBe(1);
      // A read meanwhile fails with STORE (bounded: reads block the event loop), and the memory in RAM stays.
      const voxels = memory.voxelCount;
      expect(unavailable(() => store.loadNear('w', memory, [0, 1.7, 6], 60))).toMatch(
        /reading the world store postgres:\/\/.* failed: .*asked again in 5 s/,
      );
      // Until then the next reads fail at once, without waiting for a connection again.
      expect(unavailable(() => store.getWorld('other'))).toMatch(/does not answer .*try again shortly/);
      expect(memory.voxelCount).toBe(voxels);

      await hop.up();
      store.commit('w', memory); // sends what is pending again
      await store.flush();
      expect(store.health()).toMatchObject({ ok: true, pendingBytes: 0 });

      const reader = new WorldStore(direct, { readonly: true });
      const back = reader.loadMemory('w', 0.05);
      expect(chunkBytes(back)).toEqual(chunkBytes(memory));
      expect(back.keyframes.size).toBe(2);
      reader.close();
    } finally {
      store.close();
      await hop.down();
    }
  });

  it('PostgreSQL away: a world in RAM plays on (said once), a world asked for is refused for now, not quarantined, and plays once PostgreSQL is back', async (ctx) => {
    if (!server) return ctx.skip();
    const direct = await server.database();
    const seeded = new WorldStore(direct);
    for (const id of ['kept', 'asleep']) {
      seeded.upsertWorld(testWorld(id));
      seeded.commit(id, viewFrom(0));
    }
    seeded.close();
    const hop = new Hop(Number(new URL(direct).port));
    const u = new URL(direct);
    u.port = String(await hop.up());
    const store = new WorldStore(u.toString(), { log: { warn: () => {}, error: () => {} } });
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const game = await startTestServer({ store, width: 128, height: 72, voxelSizeM: 0.05, logger });
    const bots: Bot[] = [];
    try {
      const playing = new Bot(game.url);
      bots.push(playing);
      await playing.join('kept', 'playing');
      await playing.nextFrame();
      await hop.down();
      // The world in RAM plays on: past two of the player's residency checks (every 30 clips), said once.
      for (let i = 0; i < 70; i++) await playing.nextFrame();
      expect(logged.filter((l) => /store does not answer: chunks near the player/.test(l.msg)).length).toBe(
        1,
      );
      expect(logged.filter((l) => l.level >= 50)).toEqual([]);
      const early = new Bot(game.url);
      bots.push(early);
      const refused = await early.tryJoin('asleep', 'early');
      expect(refused).toMatchObject({ ok: false, error: { code: 'WORLD_UNAVAILABLE' } });
      expect(refused.ok ? '' : refused.error.message).toMatch(
        /cannot be loaded now: the world store does not answer; try again shortly/,
      );
      await hop.up();
      await sleep(5500); // the read back-off
      const later = new Bot(game.url);
      bots.push(later);
      await later.join('asleep', 'later');
      await later.nextFrame();
      const health = (await (await fetch(`${game.url}healthz`)).json()) as { quarantined: unknown[] };
      expect(health.quarantined).toEqual([]);
    } finally {
      for (const b of bots) b.close();
      await game.close();
      store.close();
      await hop.down();
    }
  });
});
