import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, sleep } from '../../helpers/bot.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';
import { framesFlow, startWorker } from './workerProcess.ts';

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) await killHard(c);
});

describe('remote workers over loopback (real processes)', () => {
  it('survives workers that crash, stall or send malformed frames, and tells the player when none is left', async () => {
    const server = await spawnServer(['--model', 'remote', '--store', 'none', '--stall-ms', '1500']);
    children.push(server.child);
    const good = await startWorker(server.url, 'good-1');
    children.push(good);
    const bot = new Bot(server.url);
    bot.keepFrames = false;
    const joined = await bot.join('room', 'remote-player');
    expect(joined.worldId).toBe('room');
    await framesFlow(bot, 5);

    // A second worker that stalls after 3 frames: the server drops it within the stall time and
    // the clip moves to the healthy worker; frames keep coming.
    const stall = await startWorker(server.url, 'stall', ['--fault', 'stall', '--fault-after', '3']);
    children.push(stall);
    await sleep(3000);
    await framesFlow(bot, 10);

    // The healthy worker crashes (SIGKILL); a worker that sends malformed frames is all that is left.
    const bad = await startWorker(server.url, 'malformed', ['--fault', 'malformed', '--fault-after', '0']);
    children.push(bad);
    await killHard(good);
    const deadline = performance.now() + 15_000;
    while (!bot.errors.some((e) => /remote worker/.test(e.message)) && performance.now() < deadline)
      await sleep(100);
    const messages = bot.errors.map((e) => e.message).join('\n');
    expect(messages).toMatch(/generation failed: (no remote worker is connected|every remote worker failed)/);
    expect(bot.errors.every((e) => e.code === 'INTERNAL')).toBe(true);

    // The server is still up and serving: a new player can say hello, and a new worker resumes frames.
    const other = new Bot(server.url);
    expect((await other.hello()).ok).toBe(true);
    const fresh = await startWorker(server.url, 'good-2');
    children.push(fresh);
    await framesFlow(bot, 5, 20_000);
    bot.close();
    other.close();
  }, 120_000);

  it('serves the ONNX model from a worker to a server of its frame size', async () => {
    const server = await spawnServer(['--model', 'remote', '--size', '128x72', '--store', 'none']);
    children.push(server.child);
    children.push(await startWorker(server.url, 'onnx-1', ['--model', 'onnx']));
    const bot = new Bot(server.url);
    bot.keepFrames = false;
    await bot.join('onnx-world', 'onnx-player');
    await framesFlow(bot, 3, 30_000);
    expect(bot.errors).toEqual([]);
    bot.close();
  }, 90_000);

  it("refuses a worker without the server's token and accepts one with it", async () => {
    const server = await spawnServer(['--model', 'remote', '--store', 'none', '--worker-token', 'sesame']);
    children.push(server.child);
    const err = await startWorker(server.url, 'no-token').catch((e: Error) => e.message);
    expect(String(err)).toMatch(/wrong worker token/);
    const ok = await startWorker(server.url, 'with-token', ['--token', 'sesame']);
    children.push(ok);
  }, 60_000);
});
