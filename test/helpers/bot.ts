import { inflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { io, type Socket } from 'socket.io-client';
import { MirrorCache } from '../../client/src/mirrorCache.ts';
import { NO_INPUT } from '../../shared/camera/controller.ts';
import {
  type ClientToServerEvents,
  type Edited,
  type EditResult,
  type InputMessage,
  type Joined,
  PROTOCOL_VERSION,
  type ServerError,
  type ServerToClientEvents,
  type Welcome,
  type WorldStats,
} from '../../shared/protocol/events.ts';
import { decodeFrame, type EncodedFrame } from '../../shared/protocol/frameCodec.ts';
import { decodeMirrorBatch } from '../../shared/protocol/mirrorCodec.ts';

/** A scripted player over a real socket.io connection (tests and bench:net). */
export class Bot {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  readonly frames: EncodedFrame[] = [];
  readonly errors: ServerError[] = [];
  readonly stats: WorldStats[] = [];
  readonly announcements: { kind: string; name: string; playerId: string; role: string }[] = [];
  /** Edits of the world as the server announced them. */
  readonly edited: Edited[] = [];
  /** Receive time (performance.now()) of each frame. */
  readonly receivedAt: number[] = [];
  private seq = 0;
  private waiters: (() => void)[] = [];
  keepFrames = true;
  /** The memory mirror this bot holds, and each batch as it came. */
  readonly mirror = new MirrorCache();
  readonly mirrorBatches: { atMs: number; bytes: number; seq: number }[] = [];
  /** Acknowledge mirror batches (as the client does); false: a client that never does. */
  ackMirror = true;

  constructor(url: string) {
    this.socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    this.socket.on('frame', (bytes, ack) => {
      ack();
      const f = decodeFrame(new Uint8Array(bytes));
      this.receivedAt.push(performance.now());
      if (this.keepFrames) this.frames.push(f);
      else this.frames[0] = f;
      this.framesSeen++;
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('mirror', (bytes) => {
      const wire = new Uint8Array(bytes);
      const batch = decodeMirrorBatch(inflateRawSync(wire));
      this.mirrorBatches.push({ atMs: performance.now(), bytes: wire.length, seq: batch.seq });
      this.mirror.apply(batch, wire.length);
      if (this.ackMirror) this.socket.emit('mirrorAck', this.mirror.ack(batch.seq));
    });
    this.socket.on('error', (e) => this.errors.push(e));
    this.socket.on('stats', (s) => this.stats.push(s));
    this.socket.on('announce', (a) => this.announcements.push(a));
    this.socket.on('edited', (e) => this.edited.push(e));
  }

  /** Sends an edit (any payload, to test refusals) and waits for the answer. */
  edit(op: unknown): Promise<{ ok: true; value: EditResult } | { ok: false; error: ServerError }> {
    return this.socket.timeout(10_000).emitWithAck('edit', op as never);
  }

  /** Undo or redo this player's latest edit. */
  history(
    action: 'undo' | 'redo',
  ): Promise<{ ok: true; value: EditResult | null } | { ok: false; error: ServerError }> {
    return this.socket.timeout(10_000).emitWithAck('editHistory', { action });
  }
  framesSeen = 0;
  lastFrame?: EncodedFrame;

  async connected(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  async hello(
    protocol = PROTOCOL_VERSION,
  ): Promise<{ ok: true; value: Welcome } | { ok: false; error: ServerError }> {
    await this.connected();
    return this.socket.timeout(10_000).emitWithAck('hello', { protocol, client: 'bot' });
  }

  async join(worldId: string, name = 'bot', prompt?: string): Promise<Joined> {
    const r = await this.tryJoin(worldId, name, prompt);
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    return r.value;
  }

  /** Says hello and joins; the server's answer, refusals included. */
  async tryJoin(
    worldId: string,
    name = 'bot',
    prompt?: string,
  ): Promise<{ ok: true; value: Joined } | { ok: false; error: ServerError }> {
    const hello = await this.hello();
    if (!hello.ok) throw new Error(hello.error.message);
    return this.socket.timeout(10_000).emitWithAck('join', { worldId, name, prompt });
  }

  /** Sends one input sample; returns it. */
  input(partial: Partial<InputMessage> & { dtMs: number }): InputMessage {
    const msg: InputMessage = { ...NO_INPUT, seq: ++this.seq, clientTimeMs: performance.now(), ...partial };
    this.socket.emit('input', msg);
    return msg;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Resolves with the first frame (after now) that satisfies `pred`. */
  async nextFrame(
    pred: (f: EncodedFrame) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<EncodedFrame> {
    const deadline = performance.now() + timeoutMs;
    const start = this.framesSeen;
    for (;;) {
      if (this.framesSeen > start) {
        const f = this.frames.at(-1)!;
        if (pred(f)) return f;
      }
      if (performance.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  close(): void {
    this.socket.close();
  }
}

/** RGB pixels of a frame's JPEG. */
export async function frameRgb(f: EncodedFrame): Promise<Uint8Array> {
  const { data } = await sharp(f.image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Pixels of a 512-wide RGB frame within `box` ([x0, x1) × [y0, y1)) whose colour is within 90 (L1) of `rgb`: an avatar in view. */
export function pixelsNear(
  view: Uint8Array,
  [r, g, b]: readonly [number, number, number],
  [x0, x1, y0, y1]: readonly [number, number, number, number],
): number {
  let near = 0;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      const o = (y * 512 + x) * 3;
      if (Math.abs(view[o]! - r) + Math.abs(view[o + 1]! - g) + Math.abs(view[o + 2]! - b) < 90) near++;
    }
  return near;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Joins a world on a cluster as a client should: at `nodes[0]` first, following WORLD_ELSEWHERE to
 * the node it names, trying the other nodes when one does not answer (it died), and waiting out
 * a dead owner's lease (`retryAfterMs`). Gives up after `timeoutMs`.
 */
export async function joinCluster(
  nodes: readonly string[],
  worldId: string,
  name: string,
  timeoutMs = 15_000,
): Promise<{ bot: Bot; joined: Joined; url: string; redirects: number }> {
  const deadline = performance.now() + timeoutMs;
  const dead = new Set<string>();
  let next: string | undefined;
  let redirects = 0;
  let lastError = 'no node answered';
  while (performance.now() < deadline) {
    const candidates = next ? [next, ...nodes.filter((n) => n !== next)] : nodes;
    next = undefined;
    let wait = 200;
    for (const url of candidates) {
      if (dead.has(url)) continue;
      const bot = new Bot(url);
      let r: Awaited<ReturnType<Bot['tryJoin']>>;
      try {
        r = await bot.tryJoin(worldId, name);
      } catch (e) {
        bot.close();
        dead.add(url);
        lastError = `${url} does not answer (${(e as Error).message})`;
        continue;
      }
      if (r.ok) return { bot, joined: r.value, url, redirects };
      bot.close();
      lastError = `${r.error.code}: ${r.error.message}`;
      if (r.error.code !== 'WORLD_ELSEWHERE' || !r.error.node) throw new Error(lastError);
      if (!dead.has(r.error.node) && r.error.node !== url) {
        next = r.error.node;
        redirects++;
        break;
      }
      // The owner named is dead (or restarting as this node): its lease runs out within retryAfterMs.
      wait = Math.max(wait, Math.min(r.error.retryAfterMs ?? 0, 2000));
    }
    if (next === undefined) {
      dead.clear();
      await sleep(Math.min(wait, Math.max(0, deadline - performance.now())));
    }
  }
  throw new Error(`could not join "${worldId}" on ${nodes.join(', ')} within ${timeoutMs} ms: ${lastError}`);
}
