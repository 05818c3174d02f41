import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psnr } from '../../../server/metrics/imageMetrics.ts';
import type { RunningServer } from '../../../server/net/gameServer.ts';
import { DEFAULT_CONTROLLER } from '../../../shared/camera/controller.ts';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../../shared/protocol/events.ts';
import { Bot, frameRgb, sleep } from '../../helpers/bot.ts';
import { startTestServer } from '../../helpers/server.ts';

let server: RunningServer;
let clientDir: string;

beforeAll(async () => {
  clientDir = mkdtempSync(join(tmpdir(), 'spatia-client-'));
  writeFileSync(join(clientDir, 'index.html'), '<!doctype html><title>spatia test page</title>');
  server = await startTestServer({ clientDir });
});
afterAll(async () => {
  await server.close();
});

describe('game server over loopback', () => {
  it('serves the client page on the same port and nothing outside it', async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('spatia test page');
    expect((await fetch(`${server.url}..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${server.url}nope.js`)).status).toBe(404);
  });

  it('a player walks a closed loop and finds the start unchanged when coming back', async () => {
    const bot = new Bot(server.url);
    const joined = await bot.join('room', 'walker');
    expect(joined.worldId).toBe('room');
    const first = await bot.nextFrame();
    expect(first.header.intrinsics.width).toBe(512);
    expect(first.depthWidth).toBe(256);
    // Turn a full circle in place with the mouse (3 s at 60 Hz), then hold still.
    const totalPx = (2 * Math.PI) / DEFAULT_CONTROLLER.mouseRadPerPx;
    const steps = 180;
    for (let i = 0; i < steps; i++) {
      bot.input({ dtMs: 1000 / 60, lookDxPx: totalPx / steps });
      await sleep(1000 / 60);
    }
    const lastSeq = bot.lastSeq;
    // A frame generated after the last input, back at the start heading.
    const back = await bot.nextFrame((f) => f.header.inputSeq === lastSeq);
    const again = await bot.nextFrame((f) => f.header.frameId > back.header.frameId);
    for (let i = 0; i < 3; i++) expect(again.header.position[i]).toBeCloseTo(first.header.position[i]!, 6);
    for (let i = 0; i < 9; i++) expect(again.header.rotation[i]).toBeCloseTo(first.header.rotation[i]!, 6);
    expect(bot.frames.length).toBeGreaterThan(20); // frames kept streaming during the turn
    const a = await frameRgb(first);
    const b = await frameRgb(again);
    const db = psnr(a, b);
    expect(db).toBeGreaterThan(35); // measured 44.7 dB
    // Latency is echoed: the frame carries the client time of the input it reflects.
    expect(again.header.clientTimeMs).toBeGreaterThan(0);
    bot.close();
  });

  it('rejects malformed, oversized and flooding messages while another player keeps getting frames', async () => {
    const good = new Bot(server.url);
    await good.join('courtyard', 'good');
    await good.nextFrame();
    const bad = new Bot(server.url);
    // Wrong protocol version, then a join before hello was accepted.
    const wrong = await bad.hello(99);
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.error.code).toBe('VERSION_MISMATCH');
    const early = await bad.socket.timeout(5000).emitWithAck('join', { worldId: 'courtyard', name: 'x' });
    expect(early.ok).toBe(false);
    bad.input({ dtMs: 16 }); // input before joining
    const hello = await bad.hello();
    expect(hello.ok).toBe(true);
    const badJoin = await bad.socket.timeout(5000).emitWithAck('join', { worldId: '../../etc', name: 'x' });
    expect(badJoin.ok).toBe(false);
    if (!badJoin.ok) expect(badJoin.error.code).toBe('BAD_MESSAGE');
    await bad.join('courtyard', 'bad');
    const framesBefore = good.framesSeen;
    const send = (event: string, payload: unknown): void => {
      (bad.socket as unknown as { emit: (e: string, p: unknown) => void }).emit(event, payload);
    };
    send('input', { seq: 1, clientTimeMs: 0, dtMs: 16, keys: 1, lookDxPx: null, lookDyPx: 0 });
    send('input', {
      ...{ seq: 2, clientTimeMs: 0, dtMs: 16, keys: 0 },
      padMoveX: 5,
      padMoveY: 0,
      padLookX: 0,
      padLookY: 0,
      lookDxPx: 0,
      lookDyPx: 0,
    });
    send('input', 'not an object');
    send('input', { junk: 'x'.repeat(MAX_CLIENT_MESSAGE_BYTES + 10) });
    send('prompt', { prompt: '' });
    for (let i = 0; i < 600; i++) bad.input({ dtMs: 1 }); // flood: far over 250/s
    await sleep(1500);
    const codes = new Set(bad.errors.map((e) => e.code));
    expect(codes).toContain('NOT_JOINED');
    expect(codes).toContain('BAD_MESSAGE');
    expect(codes).toContain('TOO_LARGE');
    expect(codes).toContain('RATE_LIMITED');
    expect(bad.errors.every((e) => typeof e.message === 'string' && e.message.length > 0)).toBe(true);
    // The abuser is still served, and so is everyone else.
    expect(bad.socket.connected).toBe(true);
    expect(good.framesSeen - framesBefore).toBeGreaterThan(5);
    expect(good.errors).toEqual([]);
    good.close();
    bad.close();
  });

  it('sends world stats with the memory size and a map of it', async () => {
    const bot = new Bot(server.url);
    await bot.join('room', 'stats');
    await bot.nextFrame();
    const deadline = performance.now() + 8000;
    while (!bot.stats.some((s) => s.map) && performance.now() < deadline) await sleep(200);
    const withMap = bot.stats.find((s) => s.map)!;
    expect(withMap.voxels).toBeGreaterThan(10_000);
    expect(withMap.map!.png.byteLength).toBeGreaterThan(100);
    bot.close();
  });
});
