import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import { type Namespace, Server, type Socket } from 'socket.io';
import { SpatiaError } from '../../shared/errors.ts';
import { validate } from '../../shared/protocol/events.ts';
import {
  bytesOf,
  float32Of,
  type ServerToWorkerEvents,
  type WireClipRequest,
  type WireConditioningFrame,
  type WireFrame,
  WORKER_NAMESPACE,
  WORKER_PATH,
  type WorkerHello,
  type WorkerToServerEvents,
  wireFrameSchema,
  workerHelloSchema,
} from '../../shared/protocol/worker.ts';
import {
  type ClipRequest,
  type ConditioningFrame,
  type GeneratedFrame,
  validateClipRequest,
  type WorldModel,
  type WorldModelInfo,
} from '../models/worldModel.ts';
import { Inbox } from '../util/inbox.ts';
import type { ClipQueue } from './clipQueue.ts';

export interface RemotePoolOptions {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly framesPerClip: number;
  /** Workers must present this token in their hello (absent: only workers connecting from loopback are accepted). */
  readonly token?: string;
  /**
   * Without a token: whether a worker connecting from this peer address is accepted (default
   * `isLoopbackAddress`). Ignored when `token` is set.
   */
  readonly acceptWithoutToken?: (address: string) => boolean;
  /** A worker that sends nothing for this long during a clip is stalled: dropped, the clip moves on. */
  readonly stallMs?: number;
  /**
   * A worker dropped for stalling or a malformed frame may not serve for this long (default 30 s),
   * doubling with each further offence up to `maxQuarantineMs` (default 15 min).
   */
  readonly quarantineMs?: number;
  readonly maxQuarantineMs?: number;
  /** A connection that has not said hello after this long is closed (default 10 s). */
  readonly helloTimeoutMs?: number;
  /**
   * Clustered: clips go on this queue, and whichever worker takes the job claims it on this node
   * (`nodeUrl`) and streams the frames back; a clip nobody takes within `takeTimeoutMs` (default
   * 10 s) fails with WORKER_UNAVAILABLE.
   */
  readonly queue?: { readonly clips: ClipQueue; readonly nodeUrl: string; readonly takeTimeoutMs?: number };
  readonly logger: Logger;
}

/** Defaults of the pool's limits (docs/remote-workers.md). */
const WORKER_POOL_DEFAULTS = {
  stallMs: 5000,
  quarantineMs: 30_000,
  maxQuarantineMs: 15 * 60_000,
  helloTimeoutMs: 10_000,
  takeTimeoutMs: 10_000,
  /** Tries of one queued clip (each a ticket of its own) before it fails. */
  queuedTries: 3,
  /** Offence records kept (one per worker name and address); the oldest go first beyond this. */
  maxRecords: 10_000,
} as const;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether `address` (a peer address as Node reports it) is a loopback address: 127.0.0.0/8, ::1,
 * or an IPv4-mapped 127.x (`::ffff:127.0.0.1`). Anything else, host names and garbage included, is not.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  return LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** `::ffff:1.2.3.4` → `1.2.3.4` (one worker is one worker whichever socket family it came over). */
const plainAddress = (address: string): string =>
  /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;

/** What the pool remembers of a worker (by name and address) that stalled or sent malformed frames. */
interface OffenceRecord {
  offences: number;
  /** Until then the worker may not serve (its hello is refused, its other connections get no clips). */
  until: number;
  /** Until then (quarantine end + its length) it is picked only after every worker with a clean record. */
  probationUntil: number;
  lastOffence: number;
  reason: string;
}

const sameToken = (a: string, b: string): boolean =>
  timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

type WorkerSocket = Socket<WorkerToServerEvents, ServerToWorkerEvents>;

interface WorkerConn {
  readonly id: string;
  /** `name@address`: what quarantine and records are kept by. */
  readonly key: string;
  readonly socket: WorkerSocket;
  readonly hello: WorkerHello;
  busy: number;
  /** Clips (or retried rests of clips) this connection finished. */
  clipsDone: number;
  /** Per request: where its frames and its end go. */
  readonly requests: Map<string, (e: WorkerEvent) => void>;
}

type WorkerEvent =
  | { kind: 'frame'; frame: WireFrame }
  | { kind: 'done' }
  | { kind: 'failed'; message: string }
  | { kind: 'gone'; message: string };

const wirePose = (p: { rotation: readonly number[]; position: readonly number[] }) => ({
  rotation: [...p.rotation],
  position: [...p.position],
});
const wireFrame = (f: ConditioningFrame): WireConditioningFrame => ({
  pose: wirePose(f.pose),
  intrinsics: { ...f.intrinsics },
  rgb: f.rgb,
  ...(f.depth ? { depth: bytesOf(f.depth) } : {}),
});

/**
 * `--model remote`: a WorldModel whose frames come from worker processes connected over the
 * remote-worker protocol. A clip runs on the least busy worker; if that worker disconnects, stalls
 * or sends a malformed frame, it is dropped and the rest of the clip is retried on another one.
 * With no healthy worker left the clip fails with WORKER_UNAVAILABLE; the server stays up.
 *
 * Without a token only workers on this machine (loopback) are accepted. A worker dropped for
 * stalling or malformed frames is quarantined by name and address (30 s, doubling per offence,
 * capped at 15 min): its reconnections are refused, and once it is back it gets clips only when no
 * worker with a clean record can take them. A worker that has not yet finished a clip gets a
 * second one only when no other worker can take it, so a newcomer that never answers holds up one
 * player, once.
 */
export class RemoteWorkerPool implements WorldModel {
  private readonly workers = new Map<string, WorkerConn>();
  private readonly records = new Map<string, OffenceRecord>();
  private readonly info: WorldModelInfo;
  private readonly log: Logger;
  private io: Server | undefined;
  /** Queued clips waiting for a worker to claim their ticket. */
  private readonly tickets = new Map<string, (w: WorkerConn) => void>();

  constructor(private readonly o: RemotePoolOptions) {
    this.log = o.logger;
    this.info = {
      name: 'remote',
      width: o.width,
      height: o.height,
      fps: o.fps,
      framesPerClip: o.framesPerClip,
      outputsDepth: true,
      outputsDynamicMask: true,
      device: 'remote',
    };
  }

  describe(): WorldModelInfo {
    return {
      ...this.info,
      device: `remote (${this.workers.size} worker${this.workers.size === 1 ? '' : 's'})`,
    };
  }

  get workerCount(): number {
    return this.workers.size;
  }

  /** Clustered: the queue clips go through (undefined: clips are pushed to connected workers). */
  get clipQueue(): ClipQueue | undefined {
    return this.o.queue?.clips;
  }

  /**
   * Listens for workers on `http`: namespace `/workers` at WORKER_PATH, an endpoint of its own whose
   * message limit fits this pool's largest frame buffer (float32 depth) and no more.
   */
  attach(http: HttpServer): void {
    const io = new Server(http, {
      path: WORKER_PATH,
      transports: ['websocket'],
      serveClient: false,
      maxHttpBufferSize: this.info.width * this.info.height * 4 + 64 * 1024,
    });
    this.io = io;
    const ns = io.of(WORKER_NAMESPACE) as unknown as Namespace<WorkerToServerEvents, ServerToWorkerEvents>;
    ns.on('connection', (socket) => {
      let conn: WorkerConn | undefined;
      const address = plainAddress(socket.handshake.address ?? '');
      const helloTimer = setTimeout(
        () => socket.disconnect(true),
        this.o.helloTimeoutMs ?? WORKER_POOL_DEFAULTS.helloTimeoutMs,
      );
      socket.on('hello', (hello, ack) => {
        const reply = typeof ack === 'function' ? ack : () => {};
        if (conn) {
          reply({ ok: false, error: 'hello: this connection has already said hello' });
          return;
        }
        clearTimeout(helloTimer);
        const refuse = (error: string): void => {
          this.log.warn({ address, error }, 'worker refused');
          reply({ ok: false, error });
          socket.disconnect(true);
        };
        const v = validate(workerHelloSchema, hello);
        if (!v.ok) return refuse(`hello: ${v.reason}`);
        const h = v.value;
        if (this.o.token !== undefined) {
          if (h.token === undefined || !sameToken(h.token, this.o.token)) return refuse('wrong worker token');
        } else if (!(this.o.acceptWithoutToken ?? isLoopbackAddress)(address)) {
          return refuse(
            `this server has no --worker-token, so it accepts workers from loopback only (this one connects from ${address}): start the server with --worker-token T (or SPATIA_WORKER_TOKEN) and the worker with --token T`,
          );
        }
        const key = `${h.name}@${address}`;
        const record = this.recordOf(key);
        const now = Date.now();
        if (record && record.until > now)
          return refuse(
            `worker "${h.name}" from ${address} is quarantined for ${Math.ceil((record.until - now) / 1000)} s more after ${record.reason} (offence ${record.offences}); it may reconnect after that`,
          );
        const m = h.model;
        if (
          m.width !== this.info.width ||
          m.height !== this.info.height ||
          m.framesPerClip < this.info.framesPerClip
        ) {
          return refuse(
            `this server needs ${this.info.width}×${this.info.height} with ≥ ${this.info.framesPerClip} frames per clip, the worker offers ${m.width}×${m.height}, ${m.framesPerClip}`,
          );
        }
        if (!m.outputsDepth)
          return refuse('workers must output depth (it is what gets fused into the memory)');
        conn = { id: socket.id, key, socket, hello: h, busy: 0, clipsDone: 0, requests: new Map() };
        this.workers.set(socket.id, conn);
        this.log.info(
          { worker: h.name, address, model: m.name, device: m.device, offences: record?.offences ?? 0 },
          'worker connected',
        );
        reply({ ok: true });
      });
      socket.on('frame', (frame) => {
        const id = (frame as { requestId?: unknown })?.requestId;
        if (typeof id === 'string') conn?.requests.get(id)?.({ kind: 'frame', frame });
      });
      socket.on('take', (r, ack) => {
        const reply = typeof ack === 'function' ? ack : () => {};
        const ticket = typeof r?.ticket === 'string' ? r.ticket : '';
        const claim = this.tickets.get(ticket);
        if (!conn) return reply({ ok: false, error: 'say hello first' });
        const record = this.recordOf(conn.key);
        if (record && record.until > Date.now())
          return reply({ ok: false, error: 'this worker is quarantined' });
        if (!claim) return reply({ ok: false, error: `no clip waits for ticket "${ticket.slice(0, 64)}"` });
        this.tickets.delete(ticket);
        reply({ ok: true });
        claim(conn);
      });
      socket.on('done', (r) => conn?.requests.get(r?.requestId)?.({ kind: 'done' }));
      socket.on('failed', (r) =>
        conn?.requests.get(r?.requestId)?.({ kind: 'failed', message: String(r?.message ?? 'failed') }),
      );
      socket.on('disconnect', (reason) => {
        clearTimeout(helloTimer);
        if (!conn) return;
        this.workers.delete(conn.id);
        this.log.warn({ worker: conn.hello.name, reason }, 'worker disconnected');
        for (const handler of [...conn.requests.values()])
          handler({ kind: 'gone', message: `worker disconnected (${reason})` });
      });
    });
  }

  async *generate(req: ClipRequest): AsyncGenerator<GeneratedFrame> {
    validateClipRequest(req, this.info);
    if (this.o.queue) {
      yield* this.generateQueued(req, this.o.queue);
      return;
    }
    const tried = new Set<string>();
    let next = 0;
    while (next < req.poses.length) {
      const worker = this.pick(tried);
      if (!worker)
        throw new SpatiaError(
          'WORKER_UNAVAILABLE',
          tried.size > 0
            ? `every remote worker failed this clip (${tried.size} tried)`
            : this.workers.size > 0
              ? `no remote worker is available (${this.workers.size} connected, all quarantined)`
              : 'no remote worker is connected',
        );
      try {
        for await (const f of this.runOn(worker, req, next)) {
          next++;
          yield f;
        }
        worker.clipsDone++;
      } catch (e) {
        if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
        tried.add(worker.id);
        this.dropIfFaulty(worker, (e as Error).message, next);
      }
    }
  }

  /**
   * Clustered: each (rest of a) clip is a queue job with a ticket of its own; the worker that takes
   * it claims the ticket here and the frames stream over its connection. A worker that fails,
   * disconnects or stalls loses the rest of the clip to a new ticket (stalling and malformed frames
   * are offences, as for pushed clips); after `queuedTries` tickets the clip fails.
   */
  private async *generateQueued(
    req: ClipRequest,
    q: NonNullable<RemotePoolOptions['queue']>,
  ): AsyncGenerator<GeneratedFrame> {
    let next = 0;
    for (let tries = 0; next < req.poses.length; tries++) {
      if (tries === WORKER_POOL_DEFAULTS.queuedTries)
        throw new SpatiaError(
          'WORKER_UNAVAILABLE',
          `every worker that took this clip failed (${tries} tries)`,
        );
      const registered = await q.clips.workerCount();
      if (registered === 0)
        throw new SpatiaError('WORKER_UNAVAILABLE', 'no worker is registered with the clip queue');
      const ticket = randomUUID();
      const takeMs = q.takeTimeoutMs ?? WORKER_POOL_DEFAULTS.takeTimeoutMs;
      const taken = new Promise<WorkerConn | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.tickets.delete(ticket);
          resolve(undefined);
        }, takeMs);
        const abort = (): void => {
          clearTimeout(timer);
          this.tickets.delete(ticket);
          resolve(undefined);
        };
        req.signal?.addEventListener('abort', abort, { once: true });
        this.tickets.set(ticket, (w) => {
          clearTimeout(timer);
          req.signal?.removeEventListener('abort', abort);
          resolve(w);
        });
      });
      await q.clips.enqueue({ ticket, node: q.nodeUrl, clipId: req.clipId });
      const worker = await taken;
      if (req.signal?.aborted) {
        void q.clips.withdraw(ticket);
        throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
      }
      if (!worker) {
        void q.clips.withdraw(ticket);
        throw new SpatiaError(
          'WORKER_UNAVAILABLE',
          `no worker took the clip within ${takeMs} ms (${registered} registered with the queue)`,
        );
      }
      try {
        for await (const f of this.runOn(worker, req, next, ticket)) {
          next++;
          yield f;
        }
        worker.clipsDone++;
      } catch (e) {
        if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
        this.dropIfFaulty(worker, (e as Error).message, next);
      }
    }
  }

  /** After a failed (part of a) clip: a worker that stalled or sent a malformed frame is quarantined and dropped. */
  private dropIfFaulty(worker: WorkerConn, message: string, from: number): void {
    this.log.warn({ worker: worker.hello.name, err: message, from }, 'worker failed a clip; retrying');
    if (message.startsWith('stalled') || message.startsWith('malformed')) {
      this.offence(worker, message);
      this.workers.delete(worker.id);
      worker.socket.disconnect(true);
    }
  }

  /**
   * The worker for the next (part of a) clip, or undefined: one not yet tried for this clip and not
   * quarantined. Workers on probation after a quarantine come last; then a worker that has finished
   * no clip yet and already has one (a newcomer gets a second clip only if nobody else can take it);
   * then the least busy; then the one that finished most clips.
   */
  private pick(tried: ReadonlySet<string>): WorkerConn | undefined {
    const now = Date.now();
    let best: WorkerConn | undefined;
    let bestRank: readonly number[] = [];
    for (const w of this.workers.values()) {
      if (tried.has(w.id)) continue;
      const record = this.recordOf(w.key, now);
      if (record && record.until > now) continue;
      const probation = record && record.probationUntil > now ? 1 : 0;
      const unprovenAndBusy = w.clipsDone === 0 && w.busy > 0 ? 1 : 0;
      const rank = [probation, unprovenAndBusy, w.busy, -w.clipsDone];
      if (!best || compareRanks(rank, bestRank) < 0) {
        best = w;
        bestRank = rank;
      }
    }
    return best;
  }

  /** The live record of `key` (one whose offences are older than four maximum quarantines is forgotten). */
  private recordOf(key: string, now = Date.now()): OffenceRecord | undefined {
    const r = this.records.get(key);
    if (r && now - r.lastOffence > 4 * this.maxQuarantineMs) {
      this.records.delete(key);
      return undefined;
    }
    return r;
  }

  private get maxQuarantineMs(): number {
    return this.o.maxQuarantineMs ?? WORKER_POOL_DEFAULTS.maxQuarantineMs;
  }

  /** Quarantines `w`'s name and address: 30 s (by default), doubling per offence, capped. */
  private offence(w: WorkerConn, reason: string): void {
    const now = Date.now();
    const previous = this.recordOf(w.key, now);
    const offences = (previous?.offences ?? 0) + 1;
    const base = this.o.quarantineMs ?? WORKER_POOL_DEFAULTS.quarantineMs;
    const ms = Math.min(this.maxQuarantineMs, base * 2 ** Math.min(offences - 1, 30));
    this.records.delete(w.key); // re-inserted last: the map's order is the order of offences
    this.records.set(w.key, {
      offences,
      until: now + ms,
      probationUntil: now + 2 * ms,
      lastOffence: now,
      reason: reason.startsWith('stalled') ? 'stalling' : 'a malformed frame',
    });
    while (this.records.size > WORKER_POOL_DEFAULTS.maxRecords) {
      const oldest = this.records.keys().next().value;
      if (oldest === undefined) break;
      this.records.delete(oldest);
    }
    this.log.warn(
      { worker: w.hello.name, key: w.key, reason, offences, quarantineMs: ms },
      'worker quarantined',
    );
  }

  /** The frames of `req` from pose `from` on, from one worker; throws on disconnect, stall, failure or a malformed frame. */
  private async *runOn(
    w: WorkerConn,
    req: ClipRequest,
    from: number,
    ticket?: string,
  ): AsyncGenerator<GeneratedFrame> {
    const requestId = randomUUID();
    const n = req.intrinsics.width * req.intrinsics.height;
    const total = req.poses.length - from;
    const events = new Inbox<WorkerEvent>();
    w.requests.set(requestId, (e) => events.push(e));
    w.busy++;
    const wire: WireClipRequest = {
      requestId,
      clipId: req.clipId,
      poses: req.poses.slice(from).map(wirePose),
      intrinsics: { ...req.intrinsics },
      memoryViews: req.memoryViews.slice(from).map((v) => ({
        rgb: v.rgb,
        depth: bytesOf(v.depth),
        coverage: v.coverage,
        freeDepth: v.freeDepth && bytesOf(v.freeDepth),
      })),
      references: req.references.map(wireFrame),
      preceding: req.preceding.map(wireFrame),
      prompt: req.prompt,
      seed: req.seed,
      ...(req.worldSeed === undefined ? {} : { worldSeed: req.worldSeed }),
      timeS: req.timeS + from / this.info.fps,
      ...(ticket === undefined ? {} : { ticket }),
    };
    const stallMs = this.o.stallMs ?? WORKER_POOL_DEFAULTS.stallMs;
    try {
      w.socket.emit('clip', wire);
      let received = 0;
      while (received < total) {
        const e = await events.next(stallMs, req.signal);
        if (req.signal?.aborted) {
          w.socket.emit('cancel', { requestId });
          throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
        }
        if (!e) throw new Error(`stalled: no frame for ${stallMs} ms`);
        if (e.kind === 'gone' || e.kind === 'failed') throw new Error(e.message);
        if (e.kind === 'done') throw new Error(`malformed: done after ${received} of ${total} frames`);
        const v = validate(wireFrameSchema, e.frame);
        if (!v.ok) throw new Error(`malformed frame: ${v.reason}`);
        const f = v.value;
        if (f.index !== received) throw new Error(`malformed frame: index ${f.index}, expected ${received}`);
        if (f.rgb.length !== n * 3)
          throw new Error(`malformed frame: rgb has ${f.rgb.length} bytes, expected ${n * 3}`);
        if (f.depth && f.depth.length !== n * 4)
          throw new Error(`malformed frame: depth has ${f.depth.length} bytes`);
        if (f.dynamicMask && f.dynamicMask.length !== n)
          throw new Error('malformed frame: dynamic mask size');
        yield {
          index: from + received,
          rgb: f.rgb,
          depth: f.depth ? float32Of(f.depth) : undefined,
          dynamicMask: f.dynamicMask,
          generateMs: f.generateMs,
        };
        received++;
      }
    } finally {
      w.busy--;
      w.requests.delete(requestId);
    }
  }

  /** Disconnects every worker and closes the worker endpoint (the HTTP server stays with its owner). */
  async dispose(): Promise<void> {
    for (const w of this.workers.values()) w.socket.disconnect(true);
    this.workers.clear();
    this.io?.engine.close();
  }
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}
