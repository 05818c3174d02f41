import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Bot, sleep } from '../helpers/bot.ts';
import { spawnServer } from '../helpers/serverProcess.ts';
import { type BenchResult, formatTable } from './harness.ts';

/**
 * `npm run bench:net -- [--json FILE] [--seconds N]`: the real server in its own process, bots on
 * loopback walking and turning with inputs at 60 Hz. Input-to-frame latency = receive time minus
 * the client time of the newest input the frame reflects (echoed in its header).
 */
const USAGE = 'usage: npm run bench:net -- [--json FILE] [--seconds N]';

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

async function measure(
  url: string,
  players: number,
  seconds: number,
): Promise<{ latencies: number[]; fps: number[] }> {
  const bots = Array.from({ length: players }, () => new Bot(url));
  for (const b of bots) b.keepFrames = false;
  await Promise.all(bots.map((b, i) => b.join('courtyard', `bench-${i}`)));
  const latencies: number[][] = bots.map(() => []);
  bots.forEach((b, i) => {
    b.socket.on('frame', () => {
      const f = b.frames[0];
      if (f && f.header.inputSeq > 0) latencies[i]!.push(performance.now() - f.header.clientTimeMs);
    });
  });
  await sleep(1500); // warm-up: JIT, first memory
  const counts = bots.map((b) => b.framesSeen);
  const t0 = performance.now();
  let step = 0;
  while (performance.now() - t0 < seconds * 1000) {
    // Walk a slow circle: forward held, turning right.
    for (const b of bots) b.input({ dtMs: 1000 / 60, keys: 1, lookDxPx: step % 2 === 0 ? 3 : 2 });
    step++;
    await sleep(1000 / 60);
  }
  const dt = (performance.now() - t0) / 1000;
  const fps = bots.map((b, i) => (b.framesSeen - counts[i]!) / dt);
  for (const b of bots) b.close();
  return { latencies: latencies.flat(), fps };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      seconds: { type: 'string', default: '8' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 600)
    throw new Error(`--seconds must be in 1..600\n${USAGE}`);
  const { child: server, url } = await spawnServer(['--store', 'none']);
  try {
    process.stderr.write(`1 player, ${seconds} s…\n`);
    const one = await measure(url, 1, seconds);
    process.stderr.write(`4 players, ${seconds} s…\n`);
    const four = await measure(url, 4, seconds);
    const results: BenchResult[] = [
      { name: 'net.latency.p50.1p', value: quantile(one.latencies, 0.5), unit: 'ms', note: 'goal ≤ 60' },
      { name: 'net.latency.p95.1p', value: quantile(one.latencies, 0.95), unit: 'ms', note: 'goal ≤ 120' },
      { name: 'net.fps.1p', value: one.fps[0]!, unit: 'fps', note: 'goal ≥ 30' },
      {
        name: 'net.latency.p95.4p',
        value: quantile(four.latencies, 0.95),
        unit: 'ms',
        note: `p50 ${quantile(four.latencies, 0.5).toFixed(1)} ms`,
      },
      {
        name: 'net.fps.4p',
        value: Math.min(...four.fps),
        unit: 'fps',
        note: `goal ≥ 15 each; lowest player; all: ${four.fps.map((f) => f.toFixed(1)).join(', ')}`,
      },
    ];
    process.stdout.write(`\n${formatTable(results)}\n`);
    if (values.json) {
      writeFileSync(
        values.json,
        `${JSON.stringify(
          results.map(({ note: _n, ...r }) => r),
          null,
          2,
        )}\n`,
      );
      process.stdout.write(`wrote ${values.json}\n`);
    }
  } finally {
    server.kill('SIGTERM');
  }
}

await main();
