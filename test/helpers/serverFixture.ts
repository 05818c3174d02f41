import { afterAll } from 'vitest';
import type { RunningServer } from '../../server/net/gameServer.ts';
import { Bot, sleep } from './bot.ts';
import { startTestServer } from './server.ts';

/**
 * Test servers (128×72 frames) and bots for one test file, closed after its last test: `start`
 * a server, connect a `bot` to it.
 */
export function serverFixture(): {
  start: (opts?: Parameters<typeof startTestServer>[0]) => Promise<RunningServer>;
  bot: (server: RunningServer) => Bot;
} {
  const servers: RunningServer[] = [];
  const bots: Bot[] = [];
  afterAll(async () => {
    for (const b of bots) b.close();
    for (const s of servers) await s.close();
  });
  return {
    start: async (opts = {}) => {
      const s = await startTestServer({ width: 128, height: 72, ...opts });
      servers.push(s);
      return s;
    },
    bot: (server) => {
      const b = new Bot(server.url);
      bots.push(b);
      return b;
    },
  };
}

/** Waits until `cond` holds, checking every 50 ms; throws naming `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}
