import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSE_MAX_DEPTH_M } from '../../../server/memory/voxelGrid.ts';
import { psnr } from '../../../server/metrics/imageMetrics.ts';
import type { RunningServer } from '../../../server/net/gameServer.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import { avatarColor } from '../../../server/world/avatars.ts';
import { DEFAULT_CONTROLLER, Key } from '../../../shared/camera/controller.ts';
import type { EncodedFrame } from '../../../shared/protocol/frameCodec.ts';
import { Bot, frameRgb, pixelsNear, sleep } from '../../helpers/bot.ts';
import { startTestServer } from '../../helpers/server.ts';

const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');
let server: RunningServer;
let store: WorldStore;
let storePath: string;

beforeAll(async () => {
  storePath = join(mkdtempSync(join(tmpdir(), 'spatia-mp-')), 'worlds.sqlite');
  store = new WorldStore(storePath);
  server = await startTestServer({ store });
});
afterAll(async () => {
  await server.close();
  store.close();
});

async function walk(bot: Bot, frames: number, input: { keys?: number; lookDxPx?: number }): Promise<number> {
  for (let i = 0; i < frames; i++) {
    bot.input({ dtMs: 1000 / 60, ...input });
    await sleep(1000 / 60);
  }
  return bot.lastSeq;
}

describe('shared worlds', () => {
  it('four players in one world: each gets its own stream, joins are announced, others appear as avatars', async () => {
    const a = new Bot(server.url);
    const ja = await a.join('hall-dynamic', 'alice');
    // Alice walks 1.5 m forward (−z); the others spawn behind her, looking the same way.
    const seq = await walk(a, 60, { keys: Key.Forward });
    await a.nextFrame((f) => f.header.inputSeq === seq);
    const others = [new Bot(server.url), new Bot(server.url), new Bot(server.url)];
    const joined = await Promise.all(others.map((b, i) => b.join('hall-dynamic', `bot${i}`)));
    expect(joined[2]!.others).toContain('alice');
    await Promise.all([a, ...others].map((b) => b.nextFrame()));
    await sleep(300);
    expect(a.announcements.filter((x) => x.kind === 'joined').map((x) => x.name)).toEqual(
      expect.arrayContaining(['bot0', 'bot1', 'bot2']),
    );
    // Bob (bot0) sees Alice's avatar colour in the middle of his view.
    const view = await frameRgb(await others[0]!.nextFrame());
    const near = pixelsNear(view, avatarColor(ja.playerId), [200, 312, 100, 200]);
    expect(near).toBeGreaterThan(150);
    // Every player is streaming.
    const counts = [a, ...others].map((x) => x.framesSeen);
    await sleep(1500);
    for (const [i, x] of [a, ...others].entries()) expect(x.framesSeen - counts[i]!).toBeGreaterThan(3);
    others[2]!.close();
    await sleep(400);
    expect(a.announcements.some((x) => x.kind === 'left' && x.name === 'bot2')).toBe(true);
    for (const x of [a, ...others.slice(0, 2)]) x.close();
  }, 60_000);

  it('a spectator watches a player’s stream without playing', async () => {
    const p = new Bot(server.url);
    await p.join('room', 'player-one');
    await p.nextFrame();
    const s = new Bot(server.url);
    const js = await s.join('room', 'watcher').catch(() => undefined);
    expect(js).toBeDefined(); // a normal join works; now a spectator on a fresh socket:
    s.close();
    const w = new Bot(server.url);
    const hello = await w.hello();
    expect(hello.ok).toBe(true);
    const r = await w.socket
      .timeout(5000)
      .emitWithAck('join', { worldId: 'room', name: 'eve', spectate: 'player-one' });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.role).toBe('spectator');
    const f = await w.nextFrame();
    const mine = p.frames.find((x) => x.header.frameId === f.header.frameId);
    expect(f.header.clipId).toBeGreaterThanOrEqual(0);
    if (mine) expect(Buffer.from(f.image).equals(Buffer.from(mine.image))).toBe(true);
    w.input({ dtMs: 16, keys: Key.Forward });
    await sleep(300);
    expect(w.errors.some((e) => e.code === 'NOT_JOINED')).toBe(true);
    const missing = await new Bot(server.url);
    await missing.hello();
    const nobody = await missing.socket
      .timeout(5000)
      .emitWithAck('join', { worldId: 'room', name: 'x', spectate: 'ghost' });
    expect(nobody.ok).toBe(false);
    for (const x of [p, w, missing]) x.close();
  }, 60_000);

  it('private worlds refuse joiners and watchers without the invite token and send them nothing', async () => {
    const owner = new Bot(server.url);
    await owner.hello();
    const created = await owner.socket
      .timeout(5000)
      .emitWithAck('join', { worldId: 'secret-garden', name: 'owner', prompt: 'a forest', private: true });
    expect(created.ok).toBe(true);
    const token = created.ok ? created.value.inviteToken : undefined;
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    await owner.nextFrame();
    const stranger = new Bot(server.url);
    await stranger.hello();
    for (const attempt of [
      { worldId: 'secret-garden', name: 'x' },
      { worldId: 'secret-garden', name: 'x', inviteToken: 'wrong' },
      { worldId: 'secret-garden', name: 'x', spectate: 'owner' },
    ]) {
      const r = await stranger.socket.timeout(5000).emitWithAck('join', attempt);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('FORBIDDEN');
        expect(r.error.message).toMatch(/private/);
      }
    }
    await sleep(1500);
    expect(stranger.framesSeen).toBe(0);
    expect(stranger.stats).toEqual([]);
    expect(stranger.announcements).toEqual([]);
    const friend = new Bot(server.url);
    await friend.hello();
    const ok = await friend.socket
      .timeout(5000)
      .emitWithAck('join', { worldId: 'secret-garden', name: 'friend', inviteToken: token });
    expect(ok.ok).toBe(true);
    await friend.nextFrame();
    for (const x of [owner, stranger, friend]) x.close();
  }, 60_000);

  it('two players looking at the same unseen place at once see the same content there', async () => {
    // Whoever invents a place first, the other must see that invention: from the shared memory (the
    // second clip renders the first one's fused frames), or, when two clips would condition on the
    // same unseen view at once, through the world's invention lock. Moving entities are off so that
    // only static content is compared. The reference is the same walk by two players in two worlds
    // (two different inventions). Compared where the memory can hold the content (sky, or a surface
    // within FUSE_MAX_DEPTH_M in both frames): beyond it nothing is shared, and which player's props
    // the far horizon shows depends on how the clips interleave (simulated over 30 interleavings:
    // 23-41 dB over the whole frame, which failed this test at 24.4 dB in CI, 37-53 dB within the
    // memory's range). Measured here: shared 40-46 dB, separate worlds 14-16 dB.
    const race = await startTestServer({ clipFrames: 8, entities: false });
    const limitMm = FUSE_MAX_DEPTH_M * 1000;
    /** PSNR of two frames at the same pose over the pixels both show as sky or within the memory's range. */
    const comparable = async (fa: EncodedFrame, fb: EncodedFrame): Promise<number> => {
      for (let i = 0; i < 9; i++) expect(fa.header.rotation[i]).toBeCloseTo(fb.header.rotation[i]!, 6);
      const [ra, rb] = [await frameRgb(fa), await frameRgb(fb)];
      const width = fa.header.intrinsics.width;
      const factor = width / fa.depthWidth;
      const kept: number[] = [];
      for (let p = 0; p < ra.length / 3; p++) {
        const q =
          Math.floor(Math.floor(p / width) / factor) * fa.depthWidth + Math.floor((p % width) / factor);
        if (fa.depthMm[q]! <= limitMm && fb.depthMm[q]! <= limitMm) kept.push(p);
      }
      expect(kept.length / (ra.length / 3)).toBeGreaterThan(0.8);
      const pick = (rgb: Uint8Array) =>
        Uint8Array.from(kept.flatMap((p) => [rgb[p * 3]!, rgb[p * 3 + 1]!, rgb[p * 3 + 2]!]));
      return psnr(pick(ra), pick(rb));
    };
    /** Two players join at once (the same spawn view, unseen), then turn 120° right together. */
    const turnTogether = async (
      worldA: string,
      worldB: string,
    ): Promise<{ spawn: number; turned: number }> => {
      const a = new Bot(race.url);
      const b = new Bot(race.url);
      await Promise.all([a.join(worldA, 'a', 'a snowy plain'), b.join(worldB, 'b', 'a snowy plain')]);
      const spawn = await comparable(...(await Promise.all([a.nextFrame(), b.nextFrame()])));
      const px = (2 * Math.PI) / 3 / DEFAULT_CONTROLLER.mouseRadPerPx / 40;
      for (let i = 0; i < 40; i++) {
        a.input({ dtMs: 1000 / 60, lookDxPx: px });
        b.input({ dtMs: 1000 / 60, lookDxPx: px });
        await sleep(1000 / 60);
      }
      const turned = await comparable(
        ...(await Promise.all([
          a.nextFrame((f) => f.header.inputSeq === a.lastSeq),
          b.nextFrame((f) => f.header.inputSeq === b.lastSeq),
        ])),
      );
      a.close();
      b.close();
      return { spawn, turned };
    };
    const shared = await turnTogether('race', 'race');
    const separate = await turnTogether('race-a', 'race-b');
    for (const at of ['spawn', 'turned'] as const) {
      expect(shared[at]).toBeGreaterThan(30);
      expect(shared[at]).toBeGreaterThan(separate[at] + 10);
    }
    await race.close();
  }, 60_000);

  it('records a session: MP4 export with the right duration and frame count, replay matches', async () => {
    const bot = new Bot(server.url);
    await bot.hello();
    const r = await bot.socket.timeout(5000).emitWithAck('join', {
      worldId: 'courtyard-rec',
      name: 'rec',
      prompt: 'a sunny courtyard',
      record: true,
    });
    expect(r.ok).toBe(true);
    const sessionId = r.ok ? r.value.sessionId! : '';
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    await walk(bot, 90, { keys: Key.Forward, lookDxPx: 4 });
    bot.close();
    await sleep(800); // session end + flush
    const session = store.sessions.session(sessionId)!;
    expect(session.frames).toBeGreaterThan(20);
    const out = join(mkdtempSync(join(tmpdir(), 'spatia-export-')), 'session.mp4');
    const exp = await run(TSX, [
      'server/tools/exportSession.ts',
      sessionId,
      '--store',
      storePath,
      '--out',
      out,
    ]);
    expect(exp.stdout).toMatch(/exported at \d+ frames\/s/);
    const probe = await run('ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=codec_name,nb_read_frames,width,height:format=duration',
      '-of',
      'json',
      out,
    ]);
    const info = JSON.parse(probe.stdout) as {
      streams: { codec_name: string; nb_read_frames: string; width: number; height: number }[];
      format: { duration: string };
    };
    expect(info.streams[0]!.codec_name).toBe('h264');
    expect(Number(info.streams[0]!.nb_read_frames)).toBe(session.frames);
    expect([info.streams[0]!.width, info.streams[0]!.height]).toEqual([512, 288]);
    expect(Number(info.format.duration)).toBeCloseTo(session.frames / 30, 1);
    const replay = await run(TSX, ['server/tools/replay.ts', sessionId, '--store', storePath]);
    expect(replay.stdout).toMatch(new RegExp(`${session.frames}/${session.frames} match`));
  }, 120_000);
});
