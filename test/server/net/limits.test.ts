import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../../server/net/gameServer.ts';
import { Key } from '../../../shared/camera/controller.ts';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../../shared/protocol/events.ts';
import type { EncodedFrame } from '../../../shared/protocol/frameCodec.ts';
import { Bot, sleep } from '../../helpers/bot.ts';
import { startTestServer } from '../../helpers/server.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer({ width: 128, height: 72, clipFrames: 4 });
});
afterAll(async () => {
  await server.close();
});

const emitRaw = (bot: Bot, event: string, payload: unknown): void =>
  (bot.socket as unknown as { emit: (e: string, p: unknown) => void }).emit(event, payload);

describe('documented limits are the enforced ones', () => {
  it(`a message just over ${MAX_CLIENT_MESSAGE_BYTES} bytes gets TOO_LARGE; a much larger one closes only that connection`, async () => {
    const good = new Bot(server.url);
    await good.join('courtyard', 'good');
    await good.nextFrame();
    const near = new Bot(server.url);
    await near.join('courtyard', 'near');
    emitRaw(near, 'prompt', { prompt: 'x'.repeat(MAX_CLIENT_MESSAGE_BYTES) });
    const deadline = performance.now() + 5000;
    while (!near.errors.some((e) => e.code === 'TOO_LARGE') && performance.now() < deadline) await sleep(50);
    expect(near.errors.map((e) => e.code)).toContain('TOO_LARGE');
    expect(near.socket.connected).toBe(true);

    const huge = new Bot(server.url);
    await huge.join('courtyard', 'huge');
    const closed = new Promise<string>((resolve) =>
      huge.socket.once('disconnect', (reason) => resolve(reason)),
    );
    emitRaw(huge, 'prompt', { prompt: 'x'.repeat(4 * MAX_CLIENT_MESSAGE_BYTES) });
    expect(await closed).toBe('transport close');
    const before = good.framesSeen;
    await sleep(1000);
    expect(good.framesSeen - before).toBeGreaterThan(3);
    expect(near.socket.connected).toBe(true);
    for (const b of [good, near, huge]) b.close();
  });
});

describe('--clip-frames N', () => {
  it('plans the N poses of a clip from the input held: walking forward, they advance', async () => {
    const bot = new Bot(server.url);
    await bot.join('room', 'walker');
    await bot.nextFrame();
    const stop = performance.now() + 3000;
    while (performance.now() < stop) {
      bot.input({ dtMs: 16, keys: Key.Forward });
      await sleep(16);
    }
    // Frames of one clip carry their own poses, each a step further along the walking direction.
    const byClip = new Map<number, EncodedFrame[]>();
    for (const f of bot.frames) byClip.set(f.header.clipId, [...(byClip.get(f.header.clipId) ?? []), f]);
    const moving = [...byClip.values()].filter((fs) => {
      const z = fs.map((f) => f.header.position[2]!);
      return fs.length >= 3 && z.every((v, i) => i === 0 || v < z[i - 1]!);
    });
    expect(moving.length).toBeGreaterThan(0);
    bot.close();
  });
});
