import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, sleep } from '../../helpers/bot.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';
import { framesFlow, measureFrames, startWorker, workerLoop } from './workerProcess.ts';

const children: ChildProcess[] = [];
const loops: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const l of loops) await l.stop();
  for (const c of children) await killHard(c);
});

describe('a worker that stalls and keeps coming back (real processes, loopback)', () => {
  it('is quarantined after its first stall: two players keep their frame rate and never freeze again', async () => {
    const stallMs = 2000;
    const server = await spawnServer(['--model', 'remote', '--store', 'none', '--stall-ms', String(stallMs)]);
    children.push(server.child);
    let log = '';
    server.child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    children.push(await startWorker(server.url, 'good'));
    const players = [new Bot(server.url), new Bot(server.url)];
    for (const [i, p] of players.entries()) {
      p.keepFrames = false;
      await p.join('room', `player-${i}`);
    }
    for (const p of players) await framesFlow(p, 5);
    const baseline = await Promise.all(players.map((p) => measureFrames(p, 8000)));

    // The fake worker takes clips and never answers; dropped, it reconnects at once, and its
    // supervisor restarts it a second after every exit.
    const staller = workerLoop(server.url, 'staller', ['--fault', 'stall', '--fault-after', '0'], 1000);
    loops.push(staller);
    const deadline = performance.now() + 30_000;
    while (!/stalled/.test(log) && performance.now() < deadline) await sleep(50);
    expect(log).toMatch(/stalled/);
    const during = await Promise.all(players.map((p) => measureFrames(p, 10_000)));
    const fmt = (m: { fps: number; maxGapMs: number }[]) =>
      m.map((x) => `${x.fps.toFixed(2)} fps, max gap ${Math.round(x.maxGapMs)} ms`).join('; ');
    console.log(`baseline: ${fmt(baseline)}\nwith the stalling worker: ${fmt(during)}`);
    console.log(`staller started ${staller.starts()} times; its stderr:\n${staller.stderr()}`);

    for (const [i, m] of during.entries()) {
      expect(m.fps).toBeGreaterThanOrEqual(0.7 * baseline[i]!.fps);
      expect(m.maxGapMs).toBeLessThan(stallMs);
    }
    // Its comebacks were refused, with the reason.
    expect(staller.stderr()).toMatch(/server refused this worker: .*quarantined/);
    expect(log.match(/worker quarantined/g)?.length).toBe(1);
    // The server is still up.
    const other = new Bot(server.url);
    expect((await other.hello()).ok).toBe(true);
    other.close();
    for (const p of players) p.close();
  }, 120_000);
});
