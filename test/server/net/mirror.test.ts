import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../../shared/protocol/events.ts';
import { MIRROR_RADIUS_M } from '../../../shared/protocol/mirrorCodec.ts';
import { sleep } from '../../helpers/bot.ts';
import { chunksWithin } from '../../helpers/memoryChunks.ts';
import { serverFixture, until } from '../../helpers/serverFixture.ts';

/** The memory mirror over loopback: what a player holds, and what bad acknowledgements and silent clients get. */
const { start, bot } = serverFixture();

describe('the memory mirror over socket.io', () => {
  it('a player comes to hold every chunk of the memory within reach, at the revision the memory has', async () => {
    const server = await start();
    const player = bot(server);
    const joined = await player.join('courtyard', 'mirror');
    await until('frames', () => player.framesSeen >= 10);
    server.pauseGeneration(true);
    const world = server.worlds.get('courtyard')!;
    const grid = world.memory.grid;
    const eye = joined.spawn.position;
    const inReach = () => chunksWithin(grid, eye, MIRROR_RADIUS_M).map((c) => c.chunk);
    const settled = () =>
      inReach().every((c) => player.mirror.chunks.get(`${c.cx},${c.cy},${c.cz}`)?.revision === c.revision);
    // Changed chunks go again within the refresh interval (5 s).
    await until('the mirror holds the memory within reach', settled, 20_000);
    expect(inReach().length).toBeGreaterThan(100);
    expect(player.mirror.chunks.size).toBeGreaterThanOrEqual(inReach().length);
    expect(player.errors).toEqual([]);
    server.pauseGeneration(false);
    await until('frames again', () => player.framesSeen >= 15);
  }, 60_000);

  it("another player's invention reaches a player's mirror: chunks behind them that only the other player saw", async () => {
    const server = await start();
    const prompt = 'a quiet stone plaza';
    const still = bot(server);
    const joined = await still.join('shared-plaza', 'still', prompt);
    const mover = bot(server);
    await mover.join('shared-plaza', 'mover', prompt);
    const eye = joined.spawn.position;
    // The still player looks along -z (yaw 0) and never turns; chunks well behind them (+z) are the mover's.
    const behind = (): number =>
      [...still.mirror.chunks.values()].filter((c) => (c.cz + 0.5) * c.sizeM > eye[2] + 3).length;
    expect(behind()).toBe(0);
    // The mover turns round (arrow-key look, 180°) and looks at what lies behind the still player.
    for (let i = 0; i < 60; i++) {
      mover.input({ dtMs: 1000 / 60, lookDxPx: 21 });
      await sleep(1000 / 60);
    }
    await until('the mover’s invention in the still player’s mirror', () => behind() > 20, 30_000);
    expect(still.errors).toEqual([]);
  }, 60_000);

  it('bad acknowledgements get a coded error and change nothing; a client that never acknowledges gets one batch, and its frames', async () => {
    const server = await start();
    const early = bot(server);
    await early.hello();
    early.socket.emit('mirrorAck', { seq: 0, evicted: [] });
    await until('NOT_JOINED', () => early.errors.length > 0);
    expect(early.errors[0]!.code).toBe('NOT_JOINED');

    const player = bot(server);
    player.ackMirror = false;
    await player.join('courtyard', 'silent');
    await until('a batch', () => player.mirrorBatches.length > 0);
    const frames = player.framesSeen;
    await sleep(3000);
    // The mirror waits for its acknowledgement; frames never wait for the mirror.
    expect(player.mirrorBatches.length).toBe(1);
    expect(player.framesSeen - frames).toBeGreaterThan(5);
    const errorsFor = async (payload: unknown): Promise<string> => {
      const n = player.errors.length;
      player.socket.emit('mirrorAck', payload as never);
      await until('an error', () => player.errors.length > n);
      const e = player.errors.at(-1)!;
      return `${e.code}: ${e.message}`;
    };
    expect(await errorsFor({ seq: 'x', evicted: [] })).toMatch(/^BAD_MESSAGE: mirrorAck: seq/);
    expect(await errorsFor({ seq: 0, evicted: [[1, 2]] })).toMatch(/^BAD_MESSAGE: mirrorAck: evicted/);
    expect(await errorsFor({ seq: 0, evicted: [], extra: 1 })).toMatch(/^BAD_MESSAGE/);
    expect(await errorsFor({ seq: 0, evicted: Array.from({ length: 513 }, () => [0, 0, 0]) })).toMatch(
      /^BAD_MESSAGE: mirrorAck: evicted/,
    );
    // Over the documented 16 KiB (larger websocket messages close the connection, as for every event).
    const oversized = { seq: 0, evicted: Array.from({ length: 830 }, () => [65536, 65536, 65536]) };
    expect(JSON.stringify(oversized).length).toBeGreaterThan(MAX_CLIENT_MESSAGE_BYTES);
    expect(await errorsFor(oversized)).toMatch(/^TOO_LARGE/);
    const seq = player.mirrorBatches[0]!.seq;
    expect(await errorsFor({ seq: seq + 1, evicted: [] })).toMatch(
      /^BAD_MESSAGE: mirrorAck: mirror batch \d+ is waiting/,
    );
    expect(player.mirrorBatches.length).toBe(1);
    // The right acknowledgement opens the window again.
    player.socket.emit('mirrorAck', { seq, evicted: [] });
    await until('the next batch', () => player.mirrorBatches.length > 1);
    expect(player.socket.connected).toBe(true);
  }, 60_000);

  it('sends no mirror with --mirror-kbps 0, nor to spectators', async () => {
    const off = await start({ limits: { mirrorKbps: 0 } });
    const player = bot(off);
    await player.join('courtyard', 'nomirror');
    await until('frames', () => player.framesSeen >= 5);
    expect(player.mirrorBatches).toEqual([]);

    const on = await start();
    const watched = bot(on);
    await watched.join('room', 'watched');
    const watcher = bot(on);
    await watcher.hello();
    const r = await watcher.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'room', name: 'w', spectate: 'watched' });
    expect(r.ok).toBe(true);
    await until('spectator frames', () => watcher.framesSeen >= 5);
    expect(watcher.mirrorBatches).toEqual([]);
    expect(watched.mirrorBatches.length).toBeGreaterThan(0);
  }, 60_000);
});
