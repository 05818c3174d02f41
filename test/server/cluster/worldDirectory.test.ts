import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Claim, WorldDirectory } from '../../../server/cluster/worldDirectory.ts';
import { sleep } from '../../helpers/bot.ts';
import { type TestRedis, testRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });
let redis: TestRedis | undefined;
beforeAll(async () => {
  redis = await testRedis(1);
  if (!redis) console.warn('skipped: no Redis here (install redis-server or set SPATIA_TEST_REDIS_URL)');
});
afterAll(async () => {
  await redis?.stop();
});

const node = (id: string) => ({ id, url: `http://127.0.0.1:${id.length}000/${id}/` });
const open = (id: string, leaseMs = 600) =>
  WorldDirectory.open({ url: redis!.url, node: node(id), leaseMs, logger });
const owner = (c: Claim) => (c.mine ? 'me' : c.owner.id);

describe('world directory (real Redis)', () => {
  it('one owner per world: the lease is renewed while held, handed over on release and on close', async (ctx) => {
    if (!redis) return ctx.skip();
    const a = await open('node-a');
    const b = await open('node-b');
    try {
      const first = await a.claim('w');
      expect(owner(first)).toBe('me');
      const other = await b.claim('w');
      expect(owner(other)).toBe('node-a');
      expect(other.mine ? 0 : other.leaseMs).toBeGreaterThan(0);
      expect(other.mine ? '' : other.owner.url).toBe(node('node-a').url);
      // Three lease lengths later a still holds it (renewed every third).
      await sleep(1800);
      expect(owner(await b.claim('w'))).toBe('node-a');
      expect(owner(await a.claim('w'))).toBe('me');
      // Renewing keeps the lease's epoch; a new lease gets a larger one (commits carry it as a fence).
      expect(await a.claim('w')).toEqual(first);
      await a.release('w');
      const second = await b.claim('w');
      expect(owner(second)).toBe('me');
      expect(second.mine && first.mine && second.epoch > first.epoch).toBe(true);
      expect(owner(await a.claim('w'))).toBe('node-b');
      await a.claim('y');
      await a.close();
      expect(owner(await b.claim('y'))).toBe('me');
      expect(b.owned().sort()).toEqual(['w', 'y']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an owner that stops renewing loses the world to the next node asked; one whose lease was taken is told', async (ctx) => {
    if (!redis) return ctx.skip();
    const a = await open('node-a');
    const b = await open('node-b');
    const raw = new Redis(redis.url);
    try {
      expect(owner(await a.claim('dead'))).toBe('me');
      // a "dies": it stops renewing (closing without releasing is what SIGKILL leaves behind).
      (a as unknown as { held: Map<string, number> }).held.clear();
      await sleep(700);
      expect(owner(await b.claim('dead'))).toBe('me');

      const lost: string[] = [];
      a.onLost = (w) => lost.push(w);
      expect(owner(await a.claim('taken'))).toBe('me');
      await raw.set('spatia:world:taken', JSON.stringify(node('node-c')), 'PX', 5000);
      await sleep(500);
      expect(lost).toEqual(['taken']);
      expect(a.owned()).not.toContain('taken');
      expect(owner(await a.claim('taken'))).toBe('node-c');
    } finally {
      raw.disconnect();
      await a.close();
      await b.close();
    }
  });

  it('gives back a lease it holds for a world it does not serve (a join that never completed), after a lease', async (ctx) => {
    if (!redis) return ctx.skip();
    const a = await open('node-a');
    const b = await open('node-b');
    try {
      a.serving = (w) => w !== 'orphan';
      expect(owner(await a.claim('orphan'))).toBe('me');
      expect(owner(await a.claim('served'))).toBe('me');
      await sleep(1400);
      expect(owner(await b.claim('orphan'))).toBe('me');
      expect(owner(await b.claim('served'))).toBe('node-a');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a Redis that does not answer and a bad lease, with clear errors', async () => {
    await expect(
      WorldDirectory.open({ url: 'redis://127.0.0.1:1', node: node('x'), logger }),
    ).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    await expect(
      WorldDirectory.open({ url: 'redis://127.0.0.1:1', node: node('x'), leaseMs: 10, logger }),
    ).rejects.toThrow(/leaseMs must be an integer in 500\.\.600000/);
  });
});
