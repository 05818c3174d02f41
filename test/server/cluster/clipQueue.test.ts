import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bot, joinCluster, sleep } from '../../helpers/bot.ts';
import { type TestRedis, testRedis } from '../../helpers/redis.ts';
import { killHard, queueWorker, spawnServer } from '../../helpers/serverProcess.ts';

type Node = Awaited<ReturnType<typeof spawnServer>>;

let redis: TestRedis | undefined;
let dir: string;
const nodes: Node[] = [];
const workers: ChildProcess[] = [];

beforeAll(async () => {
  redis = await testRedis(4);
  if (!redis) {
    console.warn('skipped: no Redis here (install redis-server or set SPATIA_TEST_REDIS_URL)');
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'spatia-queue-'));
  const args = [
    '--redis',
    redis.url,
    '--store',
    join(dir, 'worlds.sqlite'),
    '--model',
    'remote',
    '--stall-ms',
    '3000',
  ];
  for (let i = 0; i < 2; i++) nodes.push(await spawnServer(args));
}, 120_000);
afterAll(async () => {
  await Promise.all([...workers, ...nodes.map((n) => n.child)].map((c) => killHard(c)));
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('clips through the cluster queue (BullMQ on the cluster Redis)', () => {
  it('with no worker registered, a player is told so and the node keeps serving', async (ctx) => {
    if (!redis) return ctx.skip();
    const bot = new Bot(nodes[1]!.url);
    await bot.join('lonely', 'x');
    for (let i = 0; i < 50 && bot.errors.length === 0; i++) await sleep(100);
    expect(bot.errors[0]?.message).toMatch(/no worker is registered with the clip queue/);
    bot.close();
    expect((await fetch(`${nodes[1]!.url}healthz`)).status).toBe(200);
  });

  it('two workers serve players on two nodes; one killed mid-clip, its clip goes on on the other', async (ctx) => {
    if (!redis) return ctx.skip();
    const [a, b] = nodes.map((n) => n.url) as [string, string];
    // The crashing one dies after its 20th frame, inside a clip.
    workers.push(await queueWorker(redis.url, 'steady'));
    workers.push(await queueWorker(redis.url, 'doomed', ['--fault', 'crash', '--fault-after', '20']));
    const p1 = await joinCluster([a], 'room', 'p1');
    const p2 = await joinCluster([b], 'courtyard', 'p2');
    expect([p1.url, p2.url]).toEqual([a, b]);
    const doomed = workers[1]!;
    const deadline = performance.now() + 60_000;
    while (doomed.exitCode === null && doomed.signalCode === null && performance.now() < deadline) {
      p1.bot.input({ dtMs: 50, lookDxPx: 3 });
      p2.bot.input({ dtMs: 50, lookDxPx: 3 });
      await sleep(50);
    }
    expect(doomed.signalCode).toBe('SIGKILL');
    const diedAt = performance.now();
    const seen = [p1.bot.framesSeen, p2.bot.framesSeen];
    // Both players keep getting frames: at most a pause.
    await Promise.all([p1.bot.nextFrame(), p2.bot.nextFrame()]);
    await Promise.all([p1.bot.nextFrame(), p2.bot.nextFrame()]);
    const pauseMs = performance.now() - diedAt;
    expect(p1.bot.framesSeen).toBeGreaterThan(seen[0]!);
    expect(p2.bot.framesSeen).toBeGreaterThan(seen[1]!);
    expect(pauseMs).toBeLessThan(10_000);
    // The node saw the worker go mid-clip and sent the rest of the clip out again.
    expect(nodes.map((n) => n.output()).join('')).toMatch(/worker failed a clip; retrying/);
    expect([...p1.bot.errors, ...p2.bot.errors].filter((e) => e.code !== 'RATE_LIMITED')).toEqual([]);
    console.log(`worker killed mid-clip: both players had new frames ${pauseMs.toFixed(0)} ms later`);
    p1.bot.close();
    p2.bot.close();
  }, 120_000);
});
