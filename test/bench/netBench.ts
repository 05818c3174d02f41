import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mirrorLevelAt } from '../../server/memory/mirrorStream.ts';
import { renderScene } from '../../server/scene/rayCaster.ts';
import { poseFromYawPitch } from '../../shared/camera/pose.ts';
import { whyClientBuildIsStale } from '../../tools/clientBuild.ts';
import { Bot, joinCluster, sleep } from '../helpers/bot.ts';
import { CHROMIUM, launchChromium } from '../helpers/chromium.ts';
import { K512, sceneNamed } from '../helpers/groundTruth.ts';
import { chunksWithin } from '../helpers/memoryChunks.ts';
import { clusterStore } from '../helpers/postgres.ts';
import { testRedis } from '../helpers/redis.ts';
import { startTestServer } from '../helpers/server.ts';
import { killHard, spawnServer } from '../helpers/serverProcess.ts';
import { type BenchResult, formatTable } from './harness.ts';

/**
 * `npm run bench:net -- [--json FILE] [--seconds N]`: the real server in its own process, bots on
 * loopback walking and turning with inputs at 60 Hz. Input-to-frame latency = receive time minus
 * the client time of the newest input the frame reflects (echoed in its header).
 */
const USAGE =
  'usage: npm run bench:net -- [--json FILE] [--seconds N] [--server-arg ARG]... [--cpu-prof DIR] [--cluster]\n' +
  '--cluster measures the clustered mode instead (needs redis-server): 8 players in 2 worlds on 2 nodes against\n' +
  '4 players in one world on one node, and the failover time when a node is killed;\n' +
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

/** Mean mirror bandwidth of one player walking straight into a new (invented) world, kbit/s; and the busiest second. */
async function mirrorWalk(
  url: string,
  seconds: number,
): Promise<{ kbps: number; peakKbps: number; batches: number }> {
  const b = new Bot(url);
  b.keepFrames = false;
  await b.join('bench-mirror-walk', 'walker', 'a sunlit stone courtyard with arches');
  await sleep(1500);
  const first = b.mirrorBatches.length;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    b.input({ dtMs: 1000 / 60, keys: 1 });
    await sleep(1000 / 60);
  }
  const dt = (performance.now() - t0) / 1000;
  const batches = b.mirrorBatches.slice(first);
  const bytes = batches.reduce((sum, x) => sum + x.bytes, 0);
  const perSecond = new Map<number, number>();
  for (const x of batches) {
    const s = Math.floor((x.atMs - t0) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + x.bytes);
  }
  b.close();
  return {
    kbps: (bytes * 8) / 1000 / dt,
    peakKbps: (Math.max(0, ...perSecond.values()) * 8) / 1000,
    batches: batches.length,
  };
}

/**
 * A player joining a world of 500 k voxels: ms from the join's answer until its mirror holds every
 * chunk (with voxels) within 20 m of the spawn. The server runs in this process so the bench can
 * read its memory; the world is the courtyard, fused from ground-truth views around the spawn,
 * with generation paused so it holds still.
 */
async function mirrorSync(): Promise<{
  ms: number;
  fullMs: number;
  voxels: number;
  chunks: number;
  kib: number;
}> {
  const server = await startTestServer({});
  try {
    const seeder = new Bot(server.url);
    await seeder.join('courtyard', 'seeder');
    await seeder.nextFrame();
    server.pauseGeneration(true);
    seeder.close();
    const world = server.worlds.get('courtyard')!;
    const scene = sceneNamed('courtyard');
    for (let i = 0; world.memory.voxelCount < 500_000 && i < 400; i++) {
      const pose = poseFromYawPitch(
        [((i * 7) % 13) - 6, 1.7, ((i * 5) % 11) - 2],
        (i * 2.4) % (2 * Math.PI),
        -0.2,
      );
      world.memory.fuse(renderScene(scene, pose, K512, { includeEntities: false }), pose, K512);
    }
    const grid = world.memory.grid;
    const joiner = new Bot(server.url);
    const joined = await joiner.join('courtyard', 'joiner');
    const t0 = performance.now();
    const eye = joined.spawn.position;
    const needed = chunksWithin(grid, eye, 20).map(({ chunk: c, distanceM }) => ({
      id: `${c.cx},${c.cy},${c.cz}`,
      level: mirrorLevelAt(distanceM),
    }));
    const until = async (cond: () => boolean): Promise<number> => {
      while (!cond()) {
        if (performance.now() - t0 > 60_000) throw new Error('the mirror did not sync within 60 s');
        await sleep(5);
      }
      return performance.now() - t0;
    };
    const ms = await until(() => needed.every((c) => joiner.mirror.chunks.has(c.id)));
    // Then each at the level its distance calls for.
    const fullMs = await until(() => needed.every((c) => joiner.mirror.chunks.get(c.id)!.level <= c.level));
    joiner.close();
    return { ms, fullMs, voxels: grid.voxelCount, chunks: needed.length, kib: joiner.mirror.bytes / 1024 };
  } finally {
    await server.close();
  }
}

/** The client's mirror draw of 1 M points in Chromium (bench.html), by regions of 4³ chunks and by chunk. */
async function clientMirrorDraw(url: string): Promise<Record<string, number | string>[]> {
  const browser = await launchChromium();
  try {
    const out: Record<string, number | string>[] = [];
    for (const regionBits of [2, 0]) {
      const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
      await page.goto(`${url}bench.html?points=1000000&regionBits=${regionBits}&frames=20`);
      await page.waitForFunction(
        () => (window as unknown as { benchResult?: unknown }).benchResult,
        undefined,
        {
          timeout: 300_000,
        },
      );
      out.push(
        await page.evaluate(
          () => (window as unknown as { benchResult: Record<string, number | string> }).benchResult,
        ),
      );
      await page.close();
    }
    return out;
  } finally {
    await browser.close();
  }
}

/** Lease of the benchmark's cluster nodes: the failover time is about this plus the rejoin. */
const BENCH_LEASE_MS = 2000;

/**
 * The clustered mode: Redis, 2 nodes on one store (PostgreSQL where it runs), 8 players in 2 worlds (4 each, each world on
 * its own node), moving as `measure`'s do; then the node of the first world is killed and its
 * players rejoin through the other: the failover time is the kill to the last of them having a frame.
 */
async function measureCluster(
  seconds: number,
): Promise<{ fps: number[]; cpuMsPerFrame: number; failoverMs: number; redirects: number; store: string }> {
  const redis = await testRedis(6);
  if (!redis) throw new Error('--cluster needs redis-server (apt-get install redis-server)');
  const dir = mkdtempSync(join(tmpdir(), 'spatia-bench-cluster-'));
  // PostgreSQL where the machine has it (the clustered mode's store), else one SQLite file.
  const store = await clusterStore(dir);
  const args = ['--redis', redis.url, '--store', store.location, '--lease-ms', String(BENCH_LEASE_MS)];
  const nodes = [await spawnServer(args), await spawnServer(args)];
  try {
    const urls = nodes.map((n) => n.url);
    const worlds = ['courtyard', 'bench-cluster-b'];
    const joins: { bot: Bot; world: number; redirects: number }[] = [];
    for (let i = 0; i < 8; i++) {
      const world = i % 2;
      // The first player of each world asks that world's node; the rest ask the other one.
      const order = i < 2 ? [urls[world]!] : [urls[1 - world]!, urls[world]!];
      const j = await joinCluster(order, worlds[world]!, `bench-${i}`);
      j.bot.keepFrames = false;
      joins.push({ bot: j.bot, world, redirects: j.redirects });
    }
    await sleep(1500);
    const counts = joins.map((j) => j.bot.framesSeen);
    const cpu0 = nodes.map((n) => processCpuMs(n.child.pid!));
    const t0 = performance.now();
    let step = 0;
    while (performance.now() - t0 < seconds * 1000) {
      for (const { bot } of joins) bot.input({ dtMs: 1000 / 60, keys: 1, lookDxPx: step % 2 === 0 ? 3 : 2 });
      step++;
      await sleep(1000 / 60);
    }
    const dt = (performance.now() - t0) / 1000;
    const cpuMs = nodes.reduce((sum, n, i) => sum + processCpuMs(n.child.pid!) - cpu0[i]!, 0);
    const fps = joins.map((j, i) => (j.bot.framesSeen - counts[i]!) / dt);
    const frames = joins.reduce((sum, j, i) => sum + j.bot.framesSeen - counts[i]!, 0);
    // Failover: the first world's node dies; its players come back through the other node.
    const killedAt = performance.now();
    await killHard(nodes[0]!.child);
    const moved = joins.filter((j) => j.world === 0);
    for (const j of moved) j.bot.close();
    await Promise.all(
      moved.map(async (_, i) => {
        const back = await joinCluster([urls[1]!], worlds[0]!, `bench-back-${i}`, 30_000);
        await back.bot.nextFrame();
        back.bot.close();
      }),
    );
    const failoverMs = performance.now() - killedAt;
    for (const j of joins) j.bot.close();
    return {
      fps,
      cpuMsPerFrame: cpuMs / Math.max(1, frames),
      failoverMs,
      redirects: joins.reduce((sum, j) => sum + j.redirects, 0),
      store: store.kind,
    };
  } finally {
    await Promise.all(nodes.map((n) => killHard(n.child)));
    await redis.stop();
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      seconds: { type: 'string', default: '8' },
      'server-arg': { type: 'string', multiple: true },
      'cpu-prof': { type: 'string' },
      cluster: { type: 'boolean' },
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
  const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '../..');
  const stale = whyClientBuildIsStale(PROJECT, join(PROJECT, 'client/dist'));
  if (stale) {
    process.stderr.write(`building the client (${stale})…\n`);
    const { build } = await import('vite');
    await build({ configFile: join(PROJECT, 'vite.config.ts'), logLevel: 'warn' });
  }
  const { child: server, url } = await spawnServer(
    ['--store', 'none', ...(values['server-arg'] ?? [])],
    profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  );
  if (values.cluster) {
    let four: Awaited<ReturnType<typeof measure>>;
    try {
      process.stderr.write(`4 players in one world on one node, ${seconds} s…\n`);
      four = await measure(url, server.pid!, 4, seconds);
    } finally {
      server.kill('SIGTERM');
    }
    process.stderr.write(`8 players in 2 worlds on 2 cluster nodes, ${seconds} s, then a node killed…\n`);
    const c = await measureCluster(seconds);
    report(values.json, [
      {
        name: 'net.fps.8p.2nodes',
        value: Math.min(...c.fps),
        unit: 'fps',
        peerName: 'net.fps.4p (one node)',
        peerValue: Math.min(...four.fps),
        note: `lowest of 8 players, 4 per world, each world on its own node (Redis leases, one ${c.store} store); all: ${c.fps.map((f) => f.toFixed(1)).join(', ')}; ${c.redirects} joins redirected; servers' CPU ${c.cpuMsPerFrame.toFixed(1)} ms per frame (one node, 4 players: ${four.cpuMsPerFrame.toFixed(1)})`,
      },
      {
        name: 'net.failover.ms',
        value: c.failoverMs,
        unit: 'ms',
        note: `the node of one world SIGKILLed: until its 4 players, rejoining through the other node, all have a frame (lease ${BENCH_LEASE_MS} ms)`,
      },
    ]);
    return;
  }
  try {
    process.stderr.write(`1 player, ${seconds} s…\n`);
    const one = await measure(url, server.pid!, 1, seconds);
    process.stderr.write(`1 player standing still, ${seconds} s…\n`);
    const standing = await measure(url, server.pid!, 1, seconds, 'one', false);
    process.stderr.write(`4 players, ${seconds} s…\n`);
    const four = await measure(url, server.pid!, 4, seconds);
    process.stderr.write(`4 players in 4 worlds, ${seconds} s…\n`);
    const apart = await measure(url, server.pid!, 4, seconds, 'each');
    process.stderr.write(`1 player walking into a new world (mirror bandwidth), ${seconds} s…\n`);
    const walk = await mirrorWalk(url, seconds);
    process.stderr.write('a player joining a world of 500 k voxels (mirror sync)…\n');
    const sync = await mirrorSync();
    let draws: Record<string, number | string>[] = [];
    if (existsSync(CHROMIUM)) {
      process.stderr.write('mirror draw in Chromium…\n');
      draws = await clientMirrorDraw(url);
    }
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
      {
        name: 'net.mirror.kbps.walk',
        value: walk.kbps,
        unit: 'kbit/s',
        note: `goal ≤ 1000; walking straight into a new world, default budget; busiest second ${walk.peakKbps.toFixed(0)} kbit/s, ${walk.batches} batches`,
      },
      {
        name: 'net.mirror.sync.ms.500k',
        value: sync.ms,
        unit: 'ms',
        note: `goal ≤ 1500; ${(sync.voxels / 1000).toFixed(0)} k voxels, ${sync.chunks} chunks within 20 m (coarsest level first); each at its distance's level after ${sync.fullMs.toFixed(0)} ms, ${sync.kib.toFixed(0)} KiB on the wire`,
      },
      ...draws.map(
        (d, i): BenchResult => ({
          name: i === 0 ? 'client.mirror.drawMs.1M' : 'client.mirror.drawMs.1M.perChunk',
          value: Number(d.medianMs),
          unit: 'ms',
          note: `${i === 0 ? `${d.regions} regions of 4³ chunks` : `peer: a draw per chunk, ${d.regions} chunks`}; ${d.visiblePoints} of ${d.points} points in view, ${d.width}×${d.height}, median of 20 (min ${Number(d.minMs).toFixed(1)}, max ${Number(d.maxMs).toFixed(1)}); ${d.renderer} (software WebGL)`,
        }),
      ),
    ];
    report(values.json, results);
  } finally {
    server.kill('SIGTERM');
  }
}

/** Prints the table and, with --json, writes the rows (without notes). */
function report(json: string | undefined, results: BenchResult[]): void {
  process.stdout.write(`\n${formatTable(results)}\n`);
  if (!json) return;
  writeFileSync(
    json,
    `${JSON.stringify(
      results.map(({ note: _n, ...r }) => r),
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`wrote ${json}\n`);
}

await main();
