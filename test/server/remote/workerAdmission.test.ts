import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { io } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { MODEL_DEFAULTS } from '../../../server/models/worldModel.ts';
import { isLoopbackAddress, RemoteWorkerPool } from '../../../server/remote/workerPool.ts';
import { WORKER_NAMESPACE, WORKER_PATH } from '../../../shared/protocol/worker.ts';
import { Bot } from '../../helpers/bot.ts';
import { killHard, spawnServer } from '../../helpers/serverProcess.ts';
import { framesFlow, startWorker } from './workerProcess.ts';

const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of children) await killHard(c);
  for (const c of cleanups) await c();
});

/** A worker pool on a plain HTTP server of this process, listening on 127.0.0.1. */
async function poolServer(
  acceptWithoutToken?: (address: string) => boolean,
  helloTimeoutMs?: number,
): Promise<{ pool: RemoteWorkerPool; url: string; seen: string[] }> {
  const seen: string[] = [];
  const pool = new RemoteWorkerPool({
    width: MODEL_DEFAULTS.width,
    height: MODEL_DEFAULTS.height,
    fps: MODEL_DEFAULTS.fps,
    framesPerClip: MODEL_DEFAULTS.framesPerClip,
    logger: pino({ level: 'silent' }),
    ...(helloTimeoutMs ? { helloTimeoutMs } : {}),
    ...(acceptWithoutToken
      ? {
          acceptWithoutToken: (address: string) => {
            seen.push(address);
            return acceptWithoutToken(address);
          },
        }
      : {}),
  });
  const http: Server = createServer((_req, res) => res.end('up'));
  pool.attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await pool.dispose();
    await new Promise((resolve) => http.close(resolve));
  });
  return { pool, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`, seen };
}

describe('which workers a server without --worker-token accepts', () => {
  it('tells loopback addresses from the rest', () => {
    for (const a of [
      '127.0.0.1',
      '127.1.2.3',
      '127.255.255.254',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      '::ffff:127.9.8.7',
      '::FFFF:127.0.0.1',
    ])
      expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of [
      '10.0.0.1',
      '192.168.1.20',
      '128.0.0.1',
      '126.255.255.255',
      '0.0.0.0',
      '::',
      '::2',
      'fe80::1',
      '::ffff:10.0.0.1',
      '::ffff:128.0.0.1',
      '::127.0.0.1',
      '2001:db8::1',
      'localhost',
      '0177.0.0.1',
      '2130706433',
      '127.0.0.1.evil',
      '',
      undefined,
    ])
      expect(isLoopbackAddress(a), String(a)).toBe(false);
  });

  it('refuses a worker from an address it does not trust, naming --worker-token, and keeps serving', async () => {
    // The real check runs on the real peer address; the predicate is swapped so that a loopback
    // connection stands in for a remote one (no traffic leaves loopback).
    const { pool, url, seen } = await poolServer(() => false);
    const refused = await startWorker(url, 'from-afar').catch((e: Error) => e.message);
    expect(String(refused)).toMatch(/exited 2/);
    expect(String(refused)).toMatch(
      /server refused this worker: this server has no --worker-token, so it accepts workers from loopback only \(this one connects from 127\.0\.0\.1\).*--worker-token T.*--token T/,
    );
    expect(seen).toEqual(['127.0.0.1']);
    expect(pool.workerCount).toBe(0);

    // The default predicate accepts the same worker over loopback.
    const open = await poolServer();
    children.push(await startWorker(open.url, 'local'));
    expect(open.pool.workerCount).toBe(1);
  }, 60_000);

  it('closes a connection that never says hello', async () => {
    const { url } = await poolServer(undefined, 300);
    const socket = io(new URL(WORKER_NAMESPACE, url).href, {
      path: WORKER_PATH,
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    });
    const t0 = performance.now();
    const reason = await new Promise<string>((resolve) => socket.on('disconnect', resolve));
    expect(reason).toBe('io server disconnect');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    socket.close();
  });

  it('accepts a worker over IPv6 loopback, whose player gets frames', async () => {
    const server = await spawnServer(['--model', 'remote', '--store', 'none', '--host', '::1']);
    children.push(server.child);
    const url = server.url.replace('127.0.0.1', '[::1]');
    children.push(await startWorker(url, 'v6'));
    const bot = new Bot(url);
    bot.keepFrames = false;
    await bot.join('room', 'v6-player');
    await framesFlow(bot, 5, 20_000);
    expect(bot.errors).toEqual([]);
    bot.close();
  }, 60_000);
});
