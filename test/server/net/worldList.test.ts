import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../../server/net/gameServer.ts';
import { Bot } from '../../helpers/bot.ts';
import { startTestServer } from '../../helpers/server.ts';

let server: RunningServer;
const bots: Bot[] = [];
const bot = (): Bot => {
  const b = new Bot(server.url);
  bots.push(b);
  return b;
};
beforeAll(async () => {
  server = await startTestServer({ width: 128, height: 72 });
});
afterAll(async () => {
  for (const b of bots) b.close();
  await server.close();
});

describe('the world list', () => {
  it('lists the public worlds being played, most players first, with their prompts; never a private one', async () => {
    for (const name of ['a', 'b']) await bot().join('garden', name, 'a walled garden with a fountain');
    await bot().join('cellar', 'c', 'a damp stone cellar');
    const secret = bot();
    await secret.hello();
    const created = await secret.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'hideout', name: 'd', prompt: 'a secret hideout', private: true });
    expect(created.ok).toBe(true);

    const asker = bot();
    await asker.hello();
    const list = await asker.socket.timeout(10_000).emitWithAck('listWorlds');
    expect(list).toEqual({
      ok: true,
      value: {
        worlds: [
          { worldId: 'garden', prompt: 'a walled garden with a fountain', players: 2 },
          { worldId: 'cellar', prompt: 'a damp stone cellar', players: 1 },
        ],
      },
    });
  });

  it('asks for hello first, and limits how often a connection asks', async () => {
    const early = bot();
    const refused = await early.socket.timeout(10_000).emitWithAck('listWorlds');
    expect(refused).toMatchObject({ ok: false, error: { code: 'NOT_JOINED', event: 'listWorlds' } });
    await early.hello();
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await early.socket.timeout(10_000).emitWithAck('listWorlds'));
    expect(answers.slice(0, 5).every((a) => a.ok)).toBe(true);
    expect(answers.at(-1)).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  });
});
