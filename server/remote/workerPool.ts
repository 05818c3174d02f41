import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
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

export interface RemotePoolOptions {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly framesPerClip: number;
  /** Workers must present this token in their hello (absent: any worker that reaches the server is accepted). */
  readonly token?: string;
  /** A worker that sends nothing for this long during a clip is stalled: dropped, the clip moves on. */
  readonly stallMs?: number;
  readonly logger: Logger;
}

type WorkerSocket = Socket<WorkerToServerEvents, ServerToWorkerEvents>;

interface WorkerConn {
  readonly id: string;
  readonly socket: WorkerSocket;
  readonly hello: WorkerHello;
  busy: number;
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
 */
export class RemoteWorkerPool implements WorldModel {
  private readonly workers = new Map<string, WorkerConn>();
  private readonly info: WorldModelInfo;
  private readonly log: Logger;
  private io: Server | undefined;

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
      socket.on('hello', (hello, ack) => {
        const reply = typeof ack === 'function' ? ack : () => {};
        const v = validate(workerHelloSchema, hello);
        if (!v.ok) {
          reply({ ok: false, error: `hello: ${v.reason}` });
          socket.disconnect(true);
          return;
        }
        const h = v.value;
        if (this.o.token !== undefined && h.token !== this.o.token) {
          reply({ ok: false, error: 'wrong worker token' });
          socket.disconnect(true);
          return;
        }
        const m = h.model;
        if (
          m.width !== this.info.width ||
          m.height !== this.info.height ||
          m.framesPerClip < this.info.framesPerClip
        ) {
          reply({
            ok: false,
            error: `this server needs ${this.info.width}×${this.info.height} with ≥ ${this.info.framesPerClip} frames per clip, the worker offers ${m.width}×${m.height}, ${m.framesPerClip}`,
          });
          socket.disconnect(true);
          return;
        }
        if (!m.outputsDepth) {
          reply({ ok: false, error: 'workers must output depth (it is what gets fused into the memory)' });
          socket.disconnect(true);
          return;
        }
        conn = { id: socket.id, socket, hello: h, busy: 0, requests: new Map() };
        this.workers.set(socket.id, conn);
        this.log.info({ worker: h.name, model: m.name, device: m.device }, 'worker connected');
        reply({ ok: true });
      });
      socket.on('frame', (frame) => {
        const id = (frame as { requestId?: unknown })?.requestId;
        if (typeof id === 'string') conn?.requests.get(id)?.({ kind: 'frame', frame });
      });
      socket.on('done', (r) => conn?.requests.get(r?.requestId)?.({ kind: 'done' }));
      socket.on('failed', (r) =>
        conn?.requests.get(r?.requestId)?.({ kind: 'failed', message: String(r?.message ?? 'failed') }),
      );
      socket.on('disconnect', (reason) => {
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
    const tried = new Set<string>();
    let next = 0;
    while (next < req.poses.length) {
      const worker = [...this.workers.values()]
        .filter((w) => !tried.has(w.id))
        .sort((a, b) => a.busy - b.busy)[0];
      if (!worker)
        throw new SpatiaError(
          'WORKER_UNAVAILABLE',
          tried.size === 0
            ? 'no remote worker is connected'
            : `every remote worker failed this clip (${tried.size} tried)`,
        );
      try {
        for await (const f of this.runOn(worker, req, next)) {
          next++;
          yield f;
        }
      } catch (e) {
        if (req.signal?.aborted) throw new SpatiaError('CANCELLED', `clip ${req.clipId} was cancelled`);
        tried.add(worker.id);
        this.log.warn(
          { worker: worker.hello.name, err: (e as Error).message, from: next },
          'worker failed a clip; retrying',
        );
        if ((e as Error).message.startsWith('stalled') || (e as Error).message.startsWith('malformed')) {
          this.workers.delete(worker.id);
          worker.socket.disconnect(true);
        }
      }
    }
  }

  /** The frames of `req` from pose `from` on, from one worker; throws on disconnect, stall, failure or a malformed frame. */
  private async *runOn(w: WorkerConn, req: ClipRequest, from: number): AsyncGenerator<GeneratedFrame> {
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
      memoryViews: req.memoryViews
        .slice(from)
        .map((v) => ({ rgb: v.rgb, depth: bytesOf(v.depth), coverage: v.coverage })),
      references: req.references.map(wireFrame),
      preceding: req.preceding.map(wireFrame),
      prompt: req.prompt,
      seed: req.seed,
      timeS: req.timeS + from / this.info.fps,
    };
    const stallMs = this.o.stallMs ?? 5000;
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
