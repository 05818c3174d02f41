import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { countVoxelsIn } from '../../../server/memory/edit.ts';
import { WorldStore } from '../../../server/store/worldStore.ts';
import type { EditOp, EditRegion } from '../../../shared/edit/editOps.ts';
import { MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION } from '../../../shared/protocol/events.ts';
import { Bot, sleep } from '../../helpers/bot.ts';
import { mirrorPointsIn } from '../../helpers/memoryChunks.ts';
import { startTestServer } from '../../helpers/server.ts';
import { serverFixture, until } from '../../helpers/serverFixture.ts';

/** Editing a world's memory over loopback: who may, what everyone sees, what survives a restart. */
const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');
const { start, bot } = serverFixture();

/** The courtyard's fountain, from 4 cm above the paving up. */
const FOUNTAIN: EditRegion = { shape: 'box', min: [-2.4, 0.04, -2.4], max: [2.4, 2.4, 2.4] };
const ERASE_FOUNTAIN: EditOp = { op: 'erase', region: FOUNTAIN };

describe('editing a world over socket.io', () => {
  it('an erase reaches the memory, every player and their mirrors; undo is per player; others keep playing', async () => {
    const server = await start();
    const ann = bot(server);
    const bo = bot(server);
    await ann.join('courtyard', 'ann');
    await bo.join('courtyard', 'bo');
    await until('frames', () => ann.framesSeen >= 5 && bo.framesSeen >= 5);
    await until(
      'the fountain in the mirror',
      () => mirrorPointsIn(bo.mirror.chunks.values(), FOUNTAIN) > 100,
      20_000,
    );
    const memory = server.worlds.get('courtyard')!.memory;
    const before = countVoxelsIn(memory.grid, FOUNTAIN);
    expect(before).toBeGreaterThan(300);

    const r = await ann.edit(ERASE_FOUNTAIN);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.voxels).toBe(before);
    expect(countVoxelsIn(memory.grid, FOUNTAIN)).toBe(0);
    await until('both players told', () => ann.edited.length === 1 && bo.edited.length === 1);
    expect(bo.edited[0]).toMatchObject({
      action: 'apply',
      author: 'ann',
      seq: r.value.seq,
      op: ERASE_FOUNTAIN,
    });
    // Bo's mirror gets the edited chunks first: the fountain leaves it within a second or two.
    await until(
      'the fountain gone from the mirror',
      () => mirrorPointsIn(bo.mirror.chunks.values(), FOUNTAIN) === 0,
      10_000,
    );

    // Frames go on, and nothing generated afterwards comes back into the erased box.
    const seen = bo.framesSeen;
    await until('more frames', () => bo.framesSeen >= seen + 20, 20_000);
    expect(countVoxelsIn(memory.grid, FOUNTAIN)).toBe(0);

    // Bo has nothing to undo; Ann's undo brings the fountain back, and her redo takes it again.
    const boUndo = await bo.history('undo');
    expect(boUndo).toEqual({ ok: true, value: null });
    const undo = await ann.history('undo');
    expect(undo.ok && undo.value?.voxels).toBe(before);
    expect(countVoxelsIn(memory.grid, FOUNTAIN)).toBe(before);
    await until(
      'the fountain back in the mirror',
      () => mirrorPointsIn(bo.mirror.chunks.values(), FOUNTAIN) > 100,
      10_000,
    );
    const redo = await ann.history('redo');
    expect(redo.ok && redo.value?.voxels).toBeGreaterThan(0);
    expect(countVoxelsIn(memory.grid, FOUNTAIN)).toBe(0);
    await until('undo and redo announced', () => bo.edited.length === 3);
    expect(bo.edited.map((e) => e.action)).toEqual(['apply', 'undo', 'redo']);
    expect(ann.errors).toEqual([]);
    expect(bo.errors).toEqual([]);
  }, 90_000);

  it('malformed, oversized and too frequent edits are refused with a code, change nothing, and play goes on', async () => {
    const server = await start({ limits: { editsPerMinute: 60 } });
    const eve = bot(server);
    const ann = bot(server);
    await eve.join('courtyard', 'eve');
    await ann.join('courtyard', 'ann');
    await until('frames', () => eve.framesSeen >= 3 && ann.framesSeen >= 3);
    const memory = server.worlds.get('courtyard')!.memory;
    const voxels = () => memory.voxelCount;
    server.pauseGeneration(true);
    await sleep(200);
    const held = voxels();
    const refused = async (payload: unknown, code: string): Promise<void> => {
      const r = await eve.edit(payload);
      expect(r.ok, JSON.stringify(payload).slice(0, 80)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(code);
    };
    await refused({ op: 'erase' }, 'BAD_MESSAGE');
    await refused(
      { op: 'erase', region: { shape: 'box', min: [-10, 0, -10], max: [10, 3, 10] } },
      'BAD_MESSAGE',
    );
    await refused({ op: 'erase', region: { shape: 'sphere', center: [0, 1, 0], radius: -1 } }, 'BAD_MESSAGE');
    await refused('x'.repeat(MAX_CLIENT_MESSAGE_BYTES + 10), 'TOO_LARGE');
    expect(voxels()).toBe(held);
    // Past the burst (10) the rest of a flood is refused.
    const flood = await Promise.all(
      Array.from({ length: 20 }, () =>
        eve.edit({ op: 'erase', region: { shape: 'sphere', center: [9, 9, 9], radius: 0.1 } }),
      ),
    );
    expect(flood.filter((r) => !r.ok && r.error.code === 'RATE_LIMITED').length).toBeGreaterThan(5);
    server.pauseGeneration(false);
    const seen = ann.framesSeen;
    await until('ann still playing', () => ann.framesSeen >= seen + 10);
    expect(ann.errors).toEqual([]);
  }, 60_000);

  it('in a private world only its players edit; spectators and strangers are refused; the creator locks editing', async () => {
    const server = await start();
    const owner = bot(server);
    await owner.hello();
    const made = await owner.socket.timeout(10_000).emitWithAck('join', {
      worldId: 'secret-yard',
      name: 'owner',
      private: true,
      prompt: 'a walled garden',
    });
    expect(made.ok).toBe(true);
    if (!made.ok) return;
    const { inviteToken, ownerToken } = made.value;
    expect(ownerToken).toBeTruthy();
    await until('frames', () => owner.framesSeen >= 5);
    const memory = server.worlds.get('secret-yard')!.memory;
    const everything: EditRegion = { shape: 'box', min: [-3, -1, -6], max: [3, 3, 0] };
    const held = countVoxelsIn(memory.grid, everything);
    expect(held).toBeGreaterThan(100);
    const erase: EditOp = { op: 'erase', region: everything };

    // A stranger: not joined (and refused at the door without the token).
    const stranger = bot(server);
    await stranger.hello();
    const noToken = await stranger.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'secret-yard', name: 'stranger' });
    expect(!noToken.ok && noToken.error.code).toBe('FORBIDDEN');
    const strangerEdit = await stranger.edit(erase);
    expect(!strangerEdit.ok && strangerEdit.error.code).toBe('NOT_JOINED');
    // A spectator with the token watches but does not edit.
    const watcher = bot(server);
    await watcher.hello();
    const watching = await watcher.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'secret-yard', name: 'watcher', inviteToken, spectate: 'owner' });
    expect(watching.ok).toBe(true);
    const watcherEdit = await watcher.edit(erase);
    expect(!watcherEdit.ok && watcherEdit.error.code).toBe('FORBIDDEN');
    expect(countVoxelsIn(memory.grid, everything)).toBeGreaterThanOrEqual(held);

    // A guest with the token edits; once the creator locks editing, nobody does.
    const guest = bot(server);
    await guest.hello();
    const joined = await guest.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'secret-yard', name: 'guest', inviteToken });
    expect(joined.ok).toBe(true);
    const wrongLock = await guest.socket
      .timeout(10_000)
      .emitWithAck('lockEditing', { ownerToken: 'nope', locked: true });
    expect(!wrongLock.ok && wrongLock.error.code).toBe('FORBIDDEN');
    const lock = await owner.socket
      .timeout(10_000)
      .emitWithAck('lockEditing', { ownerToken: ownerToken!, locked: true });
    expect(lock).toEqual({ ok: true, value: { locked: true } });
    const lockedOut = await guest.edit(erase);
    expect(!lockedOut.ok && lockedOut.error.code).toBe('FORBIDDEN');
    await owner.socket.timeout(10_000).emitWithAck('lockEditing', { ownerToken: ownerToken!, locked: false });
    const guestEdit = await guest.edit({
      op: 'erase',
      region: { shape: 'sphere', center: [0, 1, -3], radius: 1 },
    });
    expect(guestEdit.ok).toBe(true);
  }, 60_000);

  it('an edit survives a restart: the edited chunks, the log, and the erased region still kept empty', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'spatia-edit-')), 'w.sqlite');
    let store = new WorldStore(path);
    let server = await startTestServer({ width: 128, height: 72, store });
    const ann = new Bot(server.url);
    await ann.join('courtyard', 'ann');
    await until('frames', () => ann.framesSeen >= 5);
    const r = await ann.edit(ERASE_FOUNTAIN);
    expect(r.ok).toBe(true);
    const crate: EditOp = {
      op: 'insert',
      object: {
        shape: 'box',
        size: [0.8, 0.8, 0.8],
        color: [210, 60, 40],
        texture: 'plain',
        at: [3, 0, 3],
        yaw: 0,
      },
    };
    expect((await ann.edit(crate)).ok).toBe(true);
    ann.close();
    await server.close();
    store.close();

    store = new WorldStore(path);
    const log = store.listEdits('courtyard');
    expect(log.map((e) => [e.seq, e.author, e.op.op, e.undone])).toEqual([
      [1, 'ann', 'erase', false],
      [2, 'ann', 'insert', false],
    ]);
    server = await startTestServer({ width: 128, height: 72, store });
    const bo = new Bot(server.url);
    await bo.join('courtyard', 'bo');
    const world = server.worlds.get('courtyard')!;
    expect(countVoxelsIn(world.memory.grid, FOUNTAIN)).toBe(0);
    let authored = 0;
    world.memory.forEachVoxel((v) => {
      if (v.authored) authored++;
    });
    expect(authored).toBeGreaterThan(1000);
    // Walking on generates frames that look at the fountain's place: it stays empty memory.
    await until('frames after the restart', () => bo.framesSeen >= 20, 20_000);
    expect(countVoxelsIn(world.memory.grid, FOUNTAIN)).toBe(0);
    bo.close();
    await server.close();
    store.close();
  }, 90_000);

  it('a recorded session keeps its edits: replay applies them where they happened and matches bit for bit', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'spatia-edit-rec-')), 'w.sqlite');
    const store = new WorldStore(path);
    const server = await startTestServer({ width: 128, height: 72, store });
    const rec = new Bot(server.url);
    await rec.hello(PROTOCOL_VERSION);
    const j = await rec.socket
      .timeout(10_000)
      .emitWithAck('join', { worldId: 'courtyard', name: 'rec', record: true });
    expect(j.ok).toBe(true);
    const sessionId = j.ok ? j.value.sessionId! : '';
    await until('frames', () => rec.framesSeen >= 8);
    expect((await rec.edit(ERASE_FOUNTAIN)).ok).toBe(true);
    await until('frames after the erase', () => rec.framesSeen >= 16);
    expect((await rec.history('undo')).ok).toBe(true);
    await until('frames after the undo', () => rec.framesSeen >= 24);
    rec.close();
    await sleep(800);
    await server.close();
    const clips = [...store.sessions.clips(sessionId)];
    expect(clips.flatMap((c) => c.edits ?? []).map((e) => e.action)).toEqual(['apply', 'undo']);
    const frames = store.sessions.session(sessionId)!.frames;
    store.close();
    const replay = await run(TSX, ['server/tools/replay.ts', sessionId, '--store', path]);
    expect(replay.stdout).toMatch(new RegExp(`${frames}/${frames} match`));
  }, 120_000);
});
