import { type ChildProcess, spawn } from 'node:child_process';
import { type Bot, sleep } from '../../helpers/bot.ts';
import { killHard, outputSays } from '../../helpers/serverProcess.ts';

/** A reference worker process (`server/remote/workerMain.ts`); resolves once the server accepted it. */
export async function startWorker(server: string, name: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawnWorker(server, name, extra);
  await outputSays(child, 'serving', `worker ${name}`);
  return child;
}

function spawnWorker(server: string, name: string, extra: string[]): ChildProcess {
  return spawn(
    process.execPath,
    ['--import', 'tsx', 'server/remote/workerMain.ts', '--server', server, '--name', name, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/**
 * A worker under a supervisor that restarts it `restartMs` after every exit, until `stop`: how a
 * misbehaving worker keeps coming back (one with `--fault` also reconnects by itself when dropped
 * or refused). `stderr` collects every run's complaints (refusals among them).
 */
export function workerLoop(
  server: string,
  name: string,
  extra: string[],
  restartMs: number,
): { readonly starts: () => number; readonly stderr: () => string; stop(): Promise<void> } {
  let stopped = false;
  let starts = 0;
  let stderr = '';
  let current: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    starts++;
    const child = spawnWorker(server, name, extra);
    current = child;
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout!.resume();
    child.once('exit', () => {
      if (!stopped) timer = setTimeout(start, restartMs);
    });
  };
  start();
  return {
    starts: () => starts,
    stderr: () => stderr,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (current) await killHard(current);
    },
  };
}

/** Waits until `bot` has received `min` more frames. */
export async function framesFlow(bot: Bot, min: number, timeoutMs = 15_000): Promise<void> {
  const start = bot.framesSeen;
  const deadline = performance.now() + timeoutMs;
  while (bot.framesSeen - start < min) {
    if (performance.now() > deadline)
      throw new Error(`only ${bot.framesSeen - start} frames in ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Frames per second and the longest gap between frames (window edges included) over `ms`. */
export async function measureFrames(bot: Bot, ms: number): Promise<{ fps: number; maxGapMs: number }> {
  const from = bot.receivedAt.length;
  const t0 = performance.now();
  await sleep(ms);
  const t1 = performance.now();
  const times = [t0, ...bot.receivedAt.slice(from).filter((t) => t <= t1), t1];
  let maxGapMs = 0;
  for (let i = 1; i < times.length; i++) maxGapMs = Math.max(maxGapMs, times[i]! - times[i - 1]!);
  return { fps: ((times.length - 2) * 1000) / (t1 - t0), maxGapMs };
}
