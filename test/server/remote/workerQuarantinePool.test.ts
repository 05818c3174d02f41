import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { type ClipRequest, modelIntrinsics } from '../../../server/models/worldModel.ts';
import { RemoteWorkerPool } from '../../../server/remote/workerPool.ts';
import type { Pose } from '../../../shared/camera/pose.ts';
import {
  type ServerToWorkerEvents,
  WORKER_NAMESPACE,
  WORKER_PATH,
  WORKER_PROTOCOL,
  type WorkerToServerEvents,
} from '../../../shared/protocol/worker.ts';
import { sleep } from '../../helpers/bot.ts';

const W = 16;
const H = 8;
const N = W * H;
const sockets: Socket[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of sockets) s.close();
  for (const c of cleanups) await c();
});

/** A worker over a real socket.io connection: answers every clip at once, or never. */
async function worker(
  url: string,
  name: string,
  answers: boolean,
): Promise<{ ok: boolean; error?: string; clips: () => number; close: () => void }> {
  const socket: Socket<ServerToWorkerEvents, WorkerToServerEvents> = io(new URL(WORKER_NAMESPACE, url).href, {
    path: WORKER_PATH,
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
  });
  sockets.push(socket);
  let clips = 0;
  socket.on('clip', (req) => {
    clips++;
    if (!answers) return;
    for (let index = 0; index < req.poses.length; index++)
      socket.emit('frame', {
        requestId: req.requestId,
        index,
        rgb: new Uint8Array(N * 3),
        depth: new Uint8Array(N * 4),
        generateMs: 1,
      });
    socket.emit('done', { requestId: req.requestId });
  });
  const model = {
    name: 'fake',
    width: W,
    height: H,
    fps: 30,
    framesPerClip: 1,
    outputsDepth: true,
    outputsDynamicMask: false,
    device: 'test',
  };
  const r = await socket.timeout(5000).emitWithAck('hello', { protocol: WORKER_PROTOCOL, name, model });
  return { ...r, clips: () => clips, close: () => socket.close() };
}

const pose: Pose = { rotation: [1, 0, 0, 0, 1, 0, 0, 0, 1], position: [0, 1, 0] };
let clipId = 0;
const request = (): ClipRequest => ({
  clipId: clipId++,
  poses: [pose],
  intrinsics: modelIntrinsics(W, H),
  memoryViews: [{ rgb: new Uint8Array(N * 3), depth: new Float32Array(N), coverage: new Uint8Array(N) }],
  references: [],
  preceding: [],
  prompt: '',
  seed: 1,
  timeS: 0,
});

/** Runs one clip; its frame count, how long it took, and the error if it failed. */
async function clip(pool: RemoteWorkerPool): Promise<{ frames: number; ms: number; error?: string }> {
  const t0 = performance.now();
  let frames = 0;
  try {
    for await (const _ of pool.generate(request())) frames++;
    return { frames, ms: performance.now() - t0 };
  } catch (e) {
    return { frames, ms: performance.now() - t0, error: (e as Error).message };
  }
}

describe('quarantine of workers that stall (a pool in this process, workers over loopback sockets)', () => {
  it('refuses a staller while quarantined, doubles its quarantine per offence, and prefers clean workers', async () => {
    const pool = new RemoteWorkerPool({
      width: W,
      height: H,
      fps: 30,
      framesPerClip: 1,
      stallMs: 200,
      quarantineMs: 600,
      maxQuarantineMs: 1500,
      logger: pino({ level: 'silent' }),
    });
    const http = createServer();
    pool.attach(http);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await pool.dispose();
      await new Promise((resolve) => http.close(resolve));
    });
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;

    // First come, first picked: the staller costs this clip one stall time, then the good worker serves it.
    const staller = await worker(url, 'staller', false);
    expect(staller.ok).toBe(true);
    const good = await worker(url, 'good', true);
    const first = await clip(pool);
    expect(first).toMatchObject({ frames: 1 });
    expect(first.ms).toBeGreaterThanOrEqual(190);
    expect(staller.clips()).toBe(1);

    // Quarantined (600 ms): back at once, it is refused with the reason and the time left.
    const back = await worker(url, 'staller', false);
    expect(back.ok).toBe(false);
    expect(back.error).toMatch(
      /^worker "staller" from 127\.0\.0\.1 is quarantined for 1 s more after stalling \(offence 1\)/,
    );
    // Another name from the same address is another worker.
    const other = await worker(url, 'other-name', true);
    expect(other.ok).toBe(true);
    other.close();

    // After the quarantine it may serve again, but on probation: clips go to the clean worker.
    await sleep(650);
    const probation = await worker(url, 'staller', false);
    expect(probation.ok).toBe(true);
    for (let i = 0; i < 5; i++) expect(await clip(pool)).toMatchObject({ frames: 1 });
    expect(probation.clips()).toBe(0);

    // Alone, it gets the clip, stalls again: the second quarantine is twice as long (1200 ms).
    good.close();
    await sleep(100);
    const alone = await clip(pool);
    expect(alone.error).toMatch(/every remote worker failed this clip/);
    expect(probation.clips()).toBe(1);
    await sleep(600);
    const early = await worker(url, 'staller', false);
    expect(early.error).toMatch(/quarantined for 1 s more after stalling \(offence 2\)/);
    await sleep(700);
    const later = await worker(url, 'staller', false);
    expect(later.ok).toBe(true);
    // Nobody else: while it is connected but stalls again, the clip fails; then the third quarantine
    // is capped at 1500 ms (not 2400).
    expect((await clip(pool)).error).toMatch(/every remote worker failed/);
    expect((await clip(pool)).error).toBe('no remote worker is connected');
    await sleep(1600);
    expect((await worker(url, 'staller', true)).ok).toBe(true);
    expect(await clip(pool)).toMatchObject({ frames: 1 });
  }, 30_000);
});
