import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SpatiaError } from '../../shared/errors.ts';
import { isRedisUrl } from '../cluster/worldDirectory.ts';
import { hasLocalPostgres, startLocalPostgres } from '../store/postgres/localPostgres.ts';
import { isDatabaseUrl, isPostgresUrl, withoutPassword } from '../store/postgres/postgresUrl.ts';
import { intArg, runTool } from './cli.ts';

const USAGE = `usage: npm run cluster -- [--nodes N] [--workers M] [--port P] [--data DIR] [--redis URL]
                       [--postgres URL|none] [--lease-ms MS]

Starts a local cluster to try the clustered mode (docs/deploy.md): Redis (Debian's redis-server from
PATH, on loopback, its data in DIR/redis; or --redis URL of a running one), PostgreSQL (Debian's
postgresql, on loopback port P+201, its data in DIR/postgres; or --postgres URL of a running
database; none: the SQLite file DIR/worlds.sqlite), N server nodes (default 2) on ports P, P+1, …
(default 8080) sharing that store (default DIR data/cluster),
and with --workers M (default 0) M reference workers taking clips from the cluster's queue (the
nodes then run --model remote; without workers each node runs the procedural model itself). Every
process's output is prefixed with its name; Ctrl-C stops them all, nodes first (they commit).
Each node serves /healthz and /metrics; workers serve theirs on ports P+100, P+101, ….`;

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
}

function prefixed(name: string, proc: ChildProcess): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    let partial = '';
    stream?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) process.stdout.write(`[${name}] ${line}\n`);
    });
  }
}

function start(name: string, args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  prefixed(name, proc);
  return { name, proc };
}

/** Resolves when `text` appears in the child's output (or rejects when it exits first). */
function waitFor(c: Child, text: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`${c.name} did not start in ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const look = (d: Buffer): void => {
      if (d.toString().includes(text)) {
        clearTimeout(timer);
        ok();
      }
    };
    c.proc.stdout?.on('data', look);
    c.proc.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${c.name} exited with ${code} before it was ready`));
    });
  });
}

runTool(USAGE, async () => {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '2' },
      workers: { type: 'string', default: '0' },
      port: { type: 'string', default: '8080' },
      data: { type: 'string', default: 'data/cluster' },
      redis: { type: 'string' },
      postgres: { type: 'string' },
      'lease-ms': { type: 'string', default: '5000' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const nodes = intArg('nodes', values.nodes, 1, 16);
  const workers = intArg('workers', values.workers, 0, 16);
  const port = intArg('port', values.port, 1024, 65535 - 200);
  const leaseMs = intArg('lease-ms', values['lease-ms'], 500, 600_000);
  const data = resolve(values.data);
  mkdirSync(data, { recursive: true });
  const children: Child[] = [];
  // A start that fails leaves nothing behind (an orderly stop has ended them all by then).
  process.once('exit', () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  });
  let redisUrl = values.redis;
  if (redisUrl !== undefined && !isRedisUrl(redisUrl))
    throw new SpatiaError('INVALID_ARGUMENT', `--redis must be a redis:// URL, got "${redisUrl}"`);
  if (redisUrl === undefined) {
    try {
      execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    } catch {
      throw new SpatiaError(
        'INVALID_ARGUMENT',
        'redis-server is not installed: apt-get install redis-server, or give --redis URL of a running Redis',
      );
    }
    const redisPort = port + 200;
    const dir = join(data, 'redis');
    mkdirSync(dir, { recursive: true });
    const proc = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prefixed('redis', proc);
    const redis = { name: 'redis', proc };
    children.push(redis);
    await waitFor(redis, 'Ready to accept connections');
    redisUrl = `redis://127.0.0.1:${redisPort}`;
  }
  let stopping = false;
  let stopPostgres: (() => void) | undefined;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Nodes and workers first (nodes commit their worlds and give up their leases), Redis and PostgreSQL last.
    const ordered = [
      ...children.filter((c) => c.name !== 'redis'),
      ...children.filter((c) => c.name === 'redis'),
    ];
    for (const c of ordered) {
      if (c.proc.exitCode !== null) continue;
      await new Promise<void>((done) => {
        const hard = setTimeout(() => c.proc.kill('SIGKILL'), 15_000);
        c.proc.once('exit', () => {
          clearTimeout(hard);
          done();
        });
        c.proc.kill('SIGTERM');
      });
    }
    stopPostgres?.();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  let store = values.postgres;
  if (store !== undefined && store !== 'none' && !(isPostgresUrl(store) && isDatabaseUrl(store)))
    throw new SpatiaError('INVALID_ARGUMENT', `--postgres must be a postgres://HOST/DATABASE URL or none`);
  if (store === undefined && !hasLocalPostgres())
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      'PostgreSQL is not installed: apt-get install postgresql, give --postgres URL of a running database, ' +
        'or --postgres none (one SQLite file: nodes on this machine only)',
    );
  if (store === undefined) {
    const local = startLocalPostgres(join(data, 'postgres'), port + 201);
    stopPostgres = () => {
      stopPostgres = undefined;
      local.stop();
    };
    // pg_ctl leaves the server running on its own: it stops with the tool, however the tool ends.
    process.once('exit', () => stopPostgres?.());
    store = local.url;
    process.stdout.write(`[postgres] PostgreSQL on ${store} (data ${join(data, 'postgres')})\n`);
  } else if (store === 'none') store = join(data, 'worlds.sqlite');
  const model = workers > 0 ? ['--model', 'remote'] : [];
  const urls: string[] = [];
  // One at a time: the first node creates the shared store's schema.
  for (let i = 0; i < nodes; i++) {
    const p = port + i;
    const node = start(`node ${i + 1}`, [
      'server/main.ts',
      '--port',
      String(p),
      '--redis',
      redisUrl,
      '--store',
      store,
      '--lease-ms',
      String(leaseMs),
      ...model,
    ]);
    children.push(node);
    await waitFor(node, 'Spatia is running');
    urls.push(`http://127.0.0.1:${p}/`);
  }
  for (let i = 0; i < workers; i++) {
    const w = start(`worker ${i + 1}`, [
      'server/remote/workerMain.ts',
      '--queue',
      redisUrl,
      '--name',
      `worker-${i + 1}`,
      '--metrics-port',
      String(port + 100 + i),
    ]);
    children.push(w);
    await waitFor(w, 'takes clips from');
  }
  process.stdout.write(
    `\nSpatia cluster: ${nodes} node${nodes === 1 ? '' : 's'}, ${workers} worker${workers === 1 ? '' : 's'}, Redis ${redisUrl}, store ${withoutPassword(store)}\n` +
      urls.map((u) => `  ${u}?world=room   (health ${u}healthz, metrics ${u}metrics)`).join('\n') +
      '\nA world is served by one node at a time: open it at any node and the page moves to its node.\n' +
      'Ctrl-C stops the cluster.\n\n',
  );
  for (const c of children)
    c.proc.once('exit', (code, signal) => {
      if (!stopping) process.stdout.write(`[cluster] ${c.name} exited (${signal ?? code}); the rest go on\n`);
    });
  await new Promise(() => {});
});
