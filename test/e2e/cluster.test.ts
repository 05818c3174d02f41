import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bot } from '../helpers/bot.ts';
import { CHROMIUM, launchChromium } from '../helpers/chromium.ts';
import { clusterStore } from '../helpers/postgres.ts';
import { type TestRedis, testRedis } from '../helpers/redis.ts';
import { killHard, spawnServer } from '../helpers/serverProcess.ts';

/**
 * The browser client on a cluster (docs/deploy.md): it follows a world to the node that serves it,
 * and moves to another live node when that one dies.
 */
const run = existsSync(CHROMIUM) || process.env.CI === 'true';
type Node = Awaited<ReturnType<typeof spawnServer>>;

let redis: TestRedis | undefined;
let browser: Browser;
let dir: string;
let store: Awaited<ReturnType<typeof clusterStore>> | undefined;
const nodes: Node[] = [];

const drawn = (page: Page): Promise<number> =>
  page.evaluate(() => (window as unknown as { spatia: { framesDrawn: number } }).spatia?.framesDrawn ?? 0);

async function framesDrawnAt(page: Page, origin: string, timeout: number): Promise<void> {
  await page.waitForURL((u) => u.href.startsWith(origin), { timeout });
  await page.waitForFunction(
    () => ((window as unknown as { spatia?: { framesDrawn: number } }).spatia?.framesDrawn ?? 0) > 3,
    undefined,
    { timeout },
  );
}

describe.runIf(run)('the browser client on a cluster', () => {
  beforeAll(async () => {
    redis = await testRedis(3);
    if (!redis) return;
    await build({ configFile: join(process.cwd(), 'vite.config.ts'), logLevel: 'warn' });
    dir = mkdtempSync(join(tmpdir(), 'spatia-cluster-e2e-'));
    store = await clusterStore(dir);
    const args = ['--redis', redis.url, '--store', store.location, '--lease-ms', '2000'];
    for (let i = 0; i < 2; i++) nodes.push(await spawnServer(args));
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await Promise.all(nodes.map((n) => killHard(n.child)));
    await redis?.stop();
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opened at a node that does not serve the world, the page moves to the one that does (and lists it among the worlds); when that one dies, to another', async (ctx) => {
    if (!redis) return ctx.skip();
    const [a, b] = nodes.map((n) => n.url) as [string, string];
    // A bot makes node a the room's owner.
    const bot = new Bot(a);
    await bot.join('room', 'bot');
    const page = await browser.newPage({ viewport: { width: 480, height: 270 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    try {
      await page.goto(`${b}?world=room&name=web`);
      await framesDrawnAt(page, a, 30_000);
      expect(new URL(page.url()).searchParams.get('world')).toBe('room');
      // The worlds panel (L) lists the room, where the page and the bot play, with a link to its node.
      await page.keyboard.press('KeyL');
      const entry = page.locator('#worlds li a', { hasText: 'room · 2 players' });
      await entry.waitFor({ timeout: 10_000 });
      expect(new URL((await entry.getAttribute('href'))!).origin).toBe(new URL(a).origin);
      bot.close();

      const killedAt = performance.now();
      await killHard(nodes[0]!.child);
      await framesDrawnAt(page, b, 40_000);
      const movedMs = performance.now() - killedAt;
      expect(await drawn(page)).toBeGreaterThan(3);
      console.log(`page back with frames from the other node ${movedMs.toFixed(0)} ms after the kill`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${logs.slice(-20).join('\n')}`);
    } finally {
      await page.close();
    }
  }, 120_000);
});
