import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Key } from '../../shared/camera/controller.ts';
import { type InputMessage, MAX_CLIENT_MESSAGE_BYTES } from '../../shared/protocol/events.ts';
import { Bot, sleep } from '../helpers/bot.ts';
import { killHard, spawnServer } from '../helpers/serverProcess.ts';

/**
 * `npm run soak -- [--minutes N] [--size WxH]`: the real server in its own process with a world store,
 * under the load a public server sees for N minutes (default 20): bots walking straight into
 * unseen space (memory, keyframes and chunks keep growing), a recording player rejoining every
 * minute, players joining and leaving new worlds, and one abusive client (floods of inputs and
 * prompts claiming long steps, oversized messages, joins of nonexistent and private worlds). Prints
 * the server's RSS every minute and whether it stayed within ±15 % of its mean over the last 15
 * minutes (the last 3/4 of a shorter run). Exit code 1 when it did not, or when the server died.
 */
const USAGE = 'usage: npm run soak -- [--minutes N] [--size WxH]';

/** The parts of /healthz the soak prints. */
interface HealthReport {
  worlds: number;
  store: { pendingWrites?: number; pendingBytes?: number };
  memory: { voxels: number; chunks: number; keyframes: number; bytes: number };
  process: { heapUsed: number; heapTotal: number; external: number };
}

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

/**
 * One kind of player, over and over while `running()`: connects, joins with `join` (the world id
 * may depend on the round), plays `seconds` sending `input(step)` at 30 Hz (none when it returns
 * undefined), leaves.
 */
async function playInRounds(
  url: string,
  running: () => boolean,
  join: (round: number) => Record<string, unknown>,
  seconds: number,
  input: (step: number) => Partial<InputMessage> | undefined,
): Promise<void> {
  for (let round = 0; running(); round++) {
    const bot = new Bot(url);
    bot.keepFrames = false;
    try {
      await bot.hello();
      await bot.socket.timeout(10_000).emitWithAck('join', join(round) as never);
      const until = performance.now() + seconds * 1000;
      for (let step = 0; running() && performance.now() < until; step++) {
        const i = input(step);
        if (i) bot.input({ dtMs: 1000 / 30, ...i });
        bot.receivedAt.length = 0;
        await sleep(1000 / 30);
      }
    } catch {
      await sleep(1000);
    } finally {
      bot.close();
    }
  }
}

/** Walks straight ahead at sprint speed into unseen space, turning a little now and then. */
const walker = (url: string, name: string, running: () => boolean): Promise<void> =>
  playInRounds(
    url,
    running,
    () => ({ worldId: 'soak-north', name, prompt: 'a snowy forest' }),
    5 * 60,
    (step) => ({ keys: Key.Forward | Key.Sprint, lookDxPx: step % 300 === 0 ? 40 : 0 }),
  );

/** Joins recording, walks a circle for a minute, leaves; again. */
const recorder = (url: string, running: () => boolean): Promise<void> =>
  playInRounds(
    url,
    running,
    () => ({ worldId: 'courtyard', name: 'recorder', record: true }),
    60,
    () => ({ keys: Key.Forward, lookDxPx: 2 }),
  );

/** Joins a new world, stays a few seconds, leaves: worlds come and go. */
const tourist = (url: string, running: () => boolean): Promise<void> =>
  playInRounds(
    url,
    running,
    (round) => ({ worldId: `tour-${round}`, name: 'tourist', prompt: 'a desert' }),
    8,
    () => undefined,
  );

/** Everything a hostile client tries, over and over. */
async function abuser(url: string, running: () => boolean): Promise<void> {
  while (running()) {
    const bot = new Bot(url);
    bot.keepFrames = false;
    const raw = bot.socket as unknown as { emit: (e: string, p?: unknown) => void };
    try {
      await bot.hello();
      await bot.socket.timeout(10_000).emitWithAck('join', { worldId: 'nowhere', name: 'x', spectate: 'y' });
      await bot.socket.timeout(10_000).emitWithAck('join', { worldId: 'hall-dynamic', name: 'abuser' });
      const until = performance.now() + 30_000;
      while (running() && performance.now() < until) {
        for (let i = 0; i < 8; i++) bot.input({ dtMs: 1000, keys: Key.Forward | Key.Sprint });
        raw.emit('prompt', { prompt: 'x'.repeat(1999) });
        raw.emit('input', { junk: true });
        raw.emit('unknown-event', 1);
        bot.receivedAt.length = 0;
        bot.errors.length = 0;
        await sleep(30);
      }
      raw.emit('prompt', { prompt: 'x'.repeat(4 * MAX_CLIENT_MESSAGE_BYTES) }); // closes the connection
    } catch {
      await sleep(500);
    } finally {
      bot.close();
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '20' },
      size: { type: 'string', default: '256x144' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const minutes = Number(values.minutes);
  if (!(minutes >= 2)) throw new Error(`--minutes must be at least 2\n${USAGE}`);
  const dir = mkdtempSync(join(tmpdir(), 'spatia-soak-'));
  const server = await spawnServer(['--store', join(dir, 'worlds.sqlite'), '--size', values.size]);
  const pid = server.child.pid!;
  let running = true;
  let died = false;
  server.child.once('exit', () => {
    died = true;
  });
  const live = (): boolean => running && !died;
  const load = [
    walker(server.url, 'walker-1', live),
    walker(server.url, 'walker-2', live),
    recorder(server.url, live),
    tourist(server.url, live),
    abuser(server.url, live),
  ];
  const allocator = readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libjemalloc')
    ? 'jemalloc'
    : 'glibc malloc (libjemalloc2 not installed, or SPATIA_ALLOCATOR=glibc)';
  process.stdout.write(
    `soak: ${minutes} min against ${server.url} (pid ${pid}, allocator ${allocator}), store in ${dir}\n`,
  );
  process.stdout.write(
    'minute  RSS MiB  heap MiB  V8 total  external MiB  worlds  chunks   voxels  keyframes  grid MiB  pending MiB  health\n',
  );
  const samples: number[] = [];
  for (let m = 1; m <= minutes && !died; m++) {
    await sleep(60_000);
    if (died) break;
    const rss = rssMiB(pid);
    samples.push(rss);
    const row = await fetch(new URL('/healthz', server.url))
      .then(async (r) => {
        const h = (await r.json()) as HealthReport;
        const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
        return [
          mib(h.process.heapUsed).padStart(8),
          mib(h.process.heapTotal).padStart(8),
          mib(h.process.external).padStart(12),
          String(h.worlds).padStart(6),
          String(h.memory.chunks).padStart(7),
          String(h.memory.voxels).padStart(8),
          String(h.memory.keyframes).padStart(9),
          mib(h.memory.bytes).padStart(8),
          mib(h.store.pendingBytes ?? 0).padStart(11),
          String(r.status),
        ].join('  ');
      })
      .catch((e: Error) => e.message);
    process.stdout.write(`${String(m).padStart(6)}  ${rss.toFixed(0).padStart(7)}  ${row}\n`);
  }
  running = false;
  const diedDuringRun = died;
  await Promise.allSettled(load);
  await killHard(server.child);
  rmSync(dir, { recursive: true, force: true });
  const tail = samples.slice(-Math.max(2, Math.min(15, Math.round(samples.length * 0.75))));
  const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
  const worst = Math.max(...tail.map((x) => Math.abs(x - mean) / mean));
  // Least-squares slope over the tail: a band can hold for 15 minutes while RSS still climbs.
  const mid = (tail.length - 1) / 2;
  const slope =
    tail.reduce((a, y, i) => a + (i - mid) * (y - mean), 0) /
    tail.reduce((a, _y, i) => a + (i - mid) ** 2, 0);
  const flat = !diedDuringRun && worst <= 0.15;
  process.stdout.write(
    `\nlast ${tail.length} minutes: mean ${mean.toFixed(0)} MiB, trend ${slope >= 0 ? '+' : ''}${slope.toFixed(1)} MiB/min, ` +
      `largest deviation ${(worst * 100).toFixed(1)} % ` +
      `(goal ±15 %): ${flat ? 'FLAT' : 'NOT FLAT'}${diedDuringRun ? ' — the server died' : ''}\n`,
  );
  process.exit(flat ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
