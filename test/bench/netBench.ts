import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Bot, sleep } from '../helpers/bot.ts';
import { spawnServer } from '../helpers/serverProcess.ts';
import { type BenchResult, formatTable } from './harness.ts';

/**
 * `npm run bench:net -- [--json FILE] [--seconds N]`: the real server in its own process, bots on
 * loopback walking and turning with inputs at 60 Hz. Input-to-frame latency = receive time minus
 * the client time of the newest input the frame reflects (echoed in its header).
 */
const USAGE =
  'usage: npm run bench:net -- [--json FILE] [--seconds N] [--server-arg ARG]... [--cpu-prof DIR]\n' +
  '--server-arg passes one argument to the server (repeat it: --server-arg=--threads --server-arg=1);\n' +
  '--cpu-prof DIR writes a V8 CPU profile of the server process into DIR.';

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/** CPU time (user + system, all threads) a process has used so far, in ms; Linux's /proc. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}
/** USER_HZ: Linux reports utime and stime in these ticks (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_S = 100;

async function measure(
  url: string,
  serverPid: number,
  players: number,
  seconds: number,
  worlds: 'one' | 'each' = 'one',
  moving = true,
): Promise<{ latencies: number[]; fps: number[]; cpuMsPerFrame: number }> {
  const bots = Array.from({ length: players }, () => new Bot(url));
  for (const b of bots) b.keepFrames = false;
  // One world: the players share the courtyard's memory and take turns inventing; each: a new
  // world per player, invented from one prompt (the server's worlds then generate independently).
  await Promise.all(
    bots.map((b, i) =>
      worlds === 'one'
        ? b.join('courtyard', `bench-${i}`)
        : b.join(`bench-world-${i}`, `bench-${i}`, 'a sunlit stone courtyard with arches'),
    ),
  );
  const latencies: number[][] = bots.map(() => []);
  bots.forEach((b, i) => {
    b.socket.on('frame', () => {
      const f = b.frames[0];
      if (f && f.header.inputSeq > 0) latencies[i]!.push(performance.now() - f.header.clientTimeMs);
    });
  });
  await sleep(1500); // warm-up: JIT, first memory
  const counts = bots.map((b) => b.framesSeen);
  const cpu0 = processCpuMs(serverPid);
  const t0 = performance.now();
  let step = 0;
  while (performance.now() - t0 < seconds * 1000) {
    // Walk a slow circle: forward held, turning right.
    if (moving) for (const b of bots) b.input({ dtMs: 1000 / 60, keys: 1, lookDxPx: step % 2 === 0 ? 3 : 2 });
    step++;
    await sleep(1000 / 60);
  }
  const dt = (performance.now() - t0) / 1000;
  const cpuMs = processCpuMs(serverPid) - cpu0;
  const frames = bots.reduce((sum, b, i) => sum + b.framesSeen - counts[i]!, 0);
  const fps = bots.map((b, i) => (b.framesSeen - counts[i]!) / dt);
  for (const b of bots) b.close();
  return { latencies: latencies.flat(), fps, cpuMsPerFrame: cpuMs / Math.max(1, frames) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      seconds: { type: 'string', default: '8' },
      'server-arg': { type: 'string', multiple: true },
      'cpu-prof': { type: 'string' },
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
  const profDir = values['cpu-prof'];
  const { child: server, url } = await spawnServer(
    ['--store', 'none', ...(values['server-arg'] ?? [])],
    profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  );
  try {
    process.stderr.write(`1 player, ${seconds} s…\n`);
    const one = await measure(url, server.pid!, 1, seconds);
    process.stderr.write(`1 player standing still, ${seconds} s…\n`);
    const standing = await measure(url, server.pid!, 1, seconds, 'one', false);
    process.stderr.write(`4 players, ${seconds} s…\n`);
    const four = await measure(url, server.pid!, 4, seconds);
    process.stderr.write(`4 players in 4 worlds, ${seconds} s…\n`);
    const apart = await measure(url, server.pid!, 4, seconds, 'each');
    const results: BenchResult[] = [
      { name: 'net.latency.p50.1p', value: quantile(one.latencies, 0.5), unit: 'ms', note: 'goal ≤ 60' },
      { name: 'net.latency.p95.1p', value: quantile(one.latencies, 0.95), unit: 'ms', note: 'goal ≤ 120' },
      { name: 'net.fps.1p', value: one.fps[0]!, unit: 'fps', note: 'goal ≥ 30' },
      {
        name: 'net.fps.1p.standing',
        value: standing.fps[0]!,
        unit: 'fps',
        note: `no input: the camera holds still; server CPU ${standing.cpuMsPerFrame.toFixed(1)} ms per frame`,
      },
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
      {
        name: 'net.fps.4p.4worlds',
        value: Math.min(...apart.fps),
        unit: 'fps',
        note: `four worlds invented from one prompt, a player each; lowest player; all: ${apart.fps.map((f) => f.toFixed(1)).join(', ')}`,
      },
      {
        name: 'server.cpuMsPerFrame.1p',
        value: one.cpuMsPerFrame,
        unit: 'ms',
        note: 'server process CPU time (all threads) per generated frame',
      },
      {
        name: 'server.cpuMsPerFrame.4p',
        value: four.cpuMsPerFrame,
        unit: 'ms',
        note: 'the same with four players in one world',
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
