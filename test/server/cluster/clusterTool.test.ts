import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasLocalPostgres } from '../../../server/store/postgres/localPostgres.ts';
import { Bot } from '../../helpers/bot.ts';
import { testRedis } from '../../helpers/redis.ts';

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const metric = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
};

describe('npm run cluster', () => {
  it('starts Redis, PostgreSQL, two nodes and a queue worker; a player gets frames; health and metrics say so; SIGTERM stops them all', async (ctx) => {
    // Runs where a redis-server can be started (the tool starts its own).
    const probe = await testRedis(5);
    if (!probe) return ctx.skip();
    await probe.stop();
    const dir = mkdtempSync(join(tmpdir(), 'spatia-cluster-tool-'));
    const withPostgres = hasLocalPostgres();
    chmodSync(dir, 0o755); // PostgreSQL's own user (as root) must reach DIR/postgres
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const tool = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'server/tools/cluster.ts',
        '--nodes',
        '2',
        '--workers',
        '1',
        '--port',
        String(base),
        '--data',
        dir,
        ...(withPostgres ? [] : ['--postgres', 'none']),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    tool.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    tool.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no cluster in 90 s\n${out}`)), 90_000);
        const look = (): void => {
          if (out.includes('Ctrl-C stops the cluster')) {
            clearTimeout(t);
            resolve();
          }
        };
        tool.stdout!.on('data', look);
        tool.once('exit', (code) => reject(new Error(`cluster exited ${code}\n${out}`)));
      });
      // The nodes share a PostgreSQL it started where the machine has one, else a SQLite file.
      if (withPostgres)
        expect(out).toContain(`[postgres] PostgreSQL on postgres://postgres@127.0.0.1:${base + 201}/`);
      const node2 = `http://127.0.0.1:${base + 1}/`;
      const bot = new Bot(node2);
      await bot.join('room', 'p');
      await bot.nextFrame();
      await bot.nextFrame();
      const nodeMetrics = await (await fetch(`${node2}metrics`)).text();
      expect(metric(nodeMetrics, 'spatia_players')).toBe(1);
      expect(metric(nodeMetrics, 'spatia_world_leases')).toBe(1);
      expect(metric(nodeMetrics, 'spatia_frames_sent_total')).toBeGreaterThanOrEqual(2);
      expect(metric(nodeMetrics, 'spatia_clip_queue_waiting')).toBeGreaterThanOrEqual(0);
      const workerMetrics = await (await fetch(`http://127.0.0.1:${base + 100}/metrics`)).text();
      expect(metric(workerMetrics, 'spatia_worker_frames_total')).toBeGreaterThanOrEqual(2);
      const health = (await (await fetch(`${node2}healthz`)).json()) as {
        ok: boolean;
        cluster: { ownedWorlds: number };
      };
      expect(health).toMatchObject({ ok: true, cluster: { ownedWorlds: 1 } });
      bot.close();
    } finally {
      const exited = new Promise<number | null>((resolve) => tool.once('exit', (code) => resolve(code)));
      tool.kill('SIGTERM');
      expect(await exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
    // Nothing it started is left listening.
    await expect(fetch(`http://127.0.0.1:${base}/healthz`)).rejects.toThrow();
    if (withPostgres) expect(await listening(base + 201)).toBe(false);
  }, 180_000);
});
