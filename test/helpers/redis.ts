import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './serverProcess.ts';

/** A Redis for a test file: its URL (one database of its own, emptied) and how to let it go. */
export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The Redis `.ci/run` started (SPATIA_TEST_REDIS_URL), or one started here from Debian's
 * `redis-server` on loopback with its data in a temp folder; undefined (the caller skips, saying
 * why) where neither is there. Under CI a missing Redis is an error, not a skip.
 */
export async function testRedis(db: number): Promise<TestRedis | undefined> {
  const shared = process.env.SPATIA_TEST_REDIS_URL;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let base: string;
  if (shared) {
    base = shared.replace(/\/\d*$/, '');
  } else if (hasRedisServer()) {
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'spatia-redis-'));
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    base = `redis://127.0.0.1:${port}`;
  } else {
    if (process.env.CI) throw new Error('CI has no Redis: .ci/run should start redis-server');
    return undefined;
  }
  const url = `${base}/${db}`;
  const deadline = Date.now() + 10_000;
  let client: Redis;
  for (;;) {
    // A fresh client per try: one that failed keeps reconnecting on its own.
    client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      break;
    } catch (e) {
      client.disconnect();
      if (Date.now() > deadline) throw new Error(`Redis at ${url} did not answer: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.flushdb();
  await client.quit();
  return {
    url,
    stop: async () => {
      if (child && child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
