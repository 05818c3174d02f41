import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { type Job, Worker } from 'bullmq';
import { Counter, Gauge, Registry } from 'prom-client';
import { io, type Socket } from 'socket.io-client';
import type { Mat3 } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import {
  bytesOf,
  CLIP_QUEUE,
  type ClipJobData,
  float32Of,
  type ServerToWorkerEvents,
  type WireClipRequest,
  type WireConditioningFrame,
  WORKER_NAMESPACE,
  WORKER_PATH,
  WORKER_PROTOCOL,
  type WorkerToServerEvents,
} from '../../shared/protocol/worker.ts';
import { isRedisUrl } from '../cluster/worldDirectory.ts';
import { loadModel } from '../models/registry.ts';
import type { ClipRequest, ConditioningFrame, WorldModel } from '../models/worldModel.ts';
import { intArg, runTool } from '../tools/cli.ts';

const USAGE = `usage: npm run worker -- --server URL | --queue REDIS_URL [--concurrency N] [--lock-ms MS]
                      [--model procedural] [--name NAME] [--token T] [--metrics-port N]
                      [--fault crash|stall|malformed --fault-after N]

A reference remote worker: connects to a Spatia server started with --model remote, serves clip
requests with a local model (any --model name), and streams the frames back. It reconnects when
the server restarts or drops it, and exits (status 2) when the server refuses it (wrong token, no
token from a non-loopback address, a model that does not fit, or quarantine after stalling or
malformed frames). --fault injects a failure after N frames (for testing the server's handling);
a worker with --fault that is refused tries again every second instead of exiting.
--queue REDIS_URL serves a cluster instead (docs/remote-workers.md, "Through a queue"): the worker
takes clip jobs from the cluster's queue, up to --concurrency (1) at once, from any node, connects
to the node a job names and streams that clip's frames back to it. A job whose worker dies is
cleared once its lock runs out (--lock-ms, 10000); the node has sent the rest of the clip to
another worker by then. --metrics-port N serves /healthz (JSON) and /metrics (Prometheus) on
127.0.0.1:N: clips and frames served, clips running.`;

/** The worker's own counters (its /metrics with --metrics-port). */
const registry = new Registry();
const clipsServed = new Counter({
  name: 'spatia_worker_clips_total',
  help: 'Clips (or rests of clips) finished.',
  registers: [registry],
});
const framesServed = new Counter({
  name: 'spatia_worker_frames_total',
  help: 'Frames streamed to nodes.',
  registers: [registry],
});
const clipsRunning = new Gauge({
  name: 'spatia_worker_clips_running',
  help: 'Clips being generated now.',
  registers: [registry],
});

const pose = (p: { rotation: number[]; position: number[] }) => ({
  rotation: p.rotation as unknown as Mat3,
  position: p.position as unknown as Vec3,
});
const conditioning = (f: WireConditioningFrame): ConditioningFrame => ({
  pose: pose(f.pose),
  intrinsics: f.intrinsics,
  rgb: new Uint8Array(f.rgb),
  depth: f.depth ? float32Of(new Uint8Array(f.depth)) : undefined,
});

/** How this worker misbehaves on purpose (tests of the server's handling). */
interface Fault {
  readonly kind: string | undefined;
  readonly after: number;
}

/**
 * This worker's connection to one server node: hello, then clips (pushed by the node, or claimed
 * with a queue ticket), each generated with the local model and streamed back frame by frame.
 */
class NodeLink {
  readonly socket: Socket<ServerToWorkerEvents, WorkerToServerEvents>;
  /** Resolves once the node accepted this worker's hello. */
  readonly ready: Promise<void>;
  private readonly running = new Map<string, AbortController>();
  /** Per queue ticket: settles when its clip is done, failed or lost with the connection. */
  private readonly tickets = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private static framesSent = 0;

  constructor(
    server: string,
    private readonly model: WorldModel,
    who: { name: string; token?: string | undefined },
    private readonly fault: Fault,
    onRefused: (error: string) => void,
  ) {
    const info = model.describe();
    this.socket = io(new URL(WORKER_NAMESPACE, server).href, {
      path: WORKER_PATH,
      transports: ['websocket'],
    });
    let accepted: () => void = () => {};
    this.ready = new Promise((resolve) => {
      accepted = resolve;
    });
    this.socket.on('connect', () => {
      this.socket.emit(
        'hello',
        { protocol: WORKER_PROTOCOL, name: who.name, token: who.token, model: { ...info } },
        (r) => {
          if (!r.ok) return onRefused(r.error ?? 'refused');
          process.stdout.write(
            `worker ${who.name} serving ${info.name} ${info.width}×${info.height} (${info.device}) for ${server}\n`,
          );
          accepted();
        },
      );
    });
    this.socket.on('cancel', ({ requestId }) => this.running.get(requestId)?.abort());
    this.socket.on('disconnect', (reason) => {
      // The server has given up on whatever was running here.
      for (const abort of this.running.values()) abort.abort();
      for (const t of this.tickets.values()) t.reject(new Error(`connection lost (${reason})`));
      this.tickets.clear();
      // socket.io reconnects by itself after a lost connection, not after the server dropped this
      // worker: reconnect then too (the server's answer to the new hello says whether it may serve).
      if (reason === 'io server disconnect') {
        process.stderr.write('the server dropped this worker; reconnecting in 1 s\n');
        setTimeout(() => this.socket.connect(), 1000);
      }
    });
    this.socket.on('clip', (wire: WireClipRequest) => void this.serve(wire));
  }

  /** Claims a queued clip's ticket; true when the clip is this worker's (it has then been served). */
  async take(ticket: string): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the node did not accept this worker within 10 s')), 10_000);
    });
    try {
      await Promise.race([this.ready, late]);
    } finally {
      clearTimeout(timer);
    }
    const served = new Promise<void>((resolve, reject) => this.tickets.set(ticket, { resolve, reject }));
    const r = await this.socket.timeout(10_000).emitWithAck('take', { ticket });
    if (!r.ok) {
      this.tickets.delete(ticket);
      return false;
    }
    await served;
    return true;
  }

  close(): void {
    this.socket.close();
  }

  private async serve(wire: WireClipRequest): Promise<void> {
    const abort = new AbortController();
    this.running.set(wire.requestId, abort);
    const ticket = wire.ticket === undefined ? undefined : this.tickets.get(wire.ticket);
    if (wire.ticket !== undefined) this.tickets.delete(wire.ticket);
    const req: ClipRequest = {
      clipId: wire.clipId,
      poses: wire.poses.map(pose),
      intrinsics: wire.intrinsics,
      memoryViews: wire.memoryViews.map((v) => ({
        rgb: new Uint8Array(v.rgb),
        depth: float32Of(new Uint8Array(v.depth)),
        coverage: new Uint8Array(v.coverage),
        freeDepth: v.freeDepth && float32Of(new Uint8Array(v.freeDepth)),
      })),
      references: wire.references.map(conditioning),
      preceding: wire.preceding.map(conditioning),
      prompt: wire.prompt,
      seed: wire.seed,
      ...(wire.worldSeed === undefined ? {} : { worldSeed: wire.worldSeed }),
      timeS: wire.timeS,
      signal: abort.signal,
    };
    const { kind: fault, after } = this.fault;
    clipsRunning.inc();
    try {
      for await (const f of this.model.generate(req)) {
        if (fault && NodeLink.framesSent >= after) {
          if (fault === 'crash') process.kill(process.pid, 'SIGKILL');
          if (fault === 'stall') return; // never answers again
          if (fault === 'malformed') {
            this.socket.emit('frame', {
              requestId: wire.requestId,
              index: f.index,
              rgb: f.rgb.subarray(0, 100),
              generateMs: 1,
            });
            continue;
          }
        }
        this.socket.emit('frame', {
          requestId: wire.requestId,
          index: f.index,
          rgb: f.rgb,
          ...(f.depth ? { depth: bytesOf(f.depth) } : {}),
          ...(f.dynamicMask ? { dynamicMask: f.dynamicMask } : {}),
          generateMs: f.generateMs,
        });
        NodeLink.framesSent++;
        framesServed.inc();
      }
      this.socket.emit('done', { requestId: wire.requestId });
      clipsServed.inc();
      ticket?.resolve();
    } catch (e) {
      // Cancelled, or dropped with the connection: nobody is waiting for an answer.
      if (!abort.signal.aborted)
        this.socket.emit('failed', { requestId: wire.requestId, message: (e as Error).message });
      ticket?.reject(e as Error);
    } finally {
      clipsRunning.dec();
      this.running.delete(wire.requestId);
    }
  }
}

runTool(USAGE, async () => {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      queue: { type: 'string' },
      concurrency: { type: 'string', default: '1' },
      'lock-ms': { type: 'string', default: '10000' },
      model: { type: 'string', default: 'procedural' },
      name: { type: 'string', default: `worker-${process.pid}` },
      token: { type: 'string' },
      fault: { type: 'string' },
      'fault-after': { type: 'string', default: '0' },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if ((values.server === undefined) === (values.queue === undefined))
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      'give one of --server URL (one node) or --queue REDIS_URL (a cluster)',
    );
  if (values.queue !== undefined && !isRedisUrl(values.queue))
    throw new SpatiaError('INVALID_ARGUMENT', `--queue must be a redis:// URL, got "${values.queue}"`);
  const fault: Fault = {
    kind: values.fault,
    after: intArg('fault-after', values['fault-after'], 0, 1_000_000),
  };
  if (fault.kind !== undefined && !['crash', 'stall', 'malformed'].includes(fault.kind))
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `--fault must be crash, stall or malformed, got "${fault.kind}"`,
    );
  const concurrency = intArg('concurrency', values.concurrency, 1, 64);
  const lockMs = intArg('lock-ms', values['lock-ms'], 1000, 600_000);
  const model = await loadModel(values.model);
  if (values['metrics-port'] !== undefined) {
    const port = intArg('metrics-port', values['metrics-port'], 1, 65535);
    const name = values.name;
    createServer((req, res) => {
      if (req.url === '/metrics')
        void registry
          .metrics()
          .then((t) => res.writeHead(200, { 'content-type': registry.contentType }).end(t));
      else if (req.url === '/healthz')
        void registry.getMetricsAsJSON().then((m) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              ok: true,
              name,
              metrics: m.map((x) => ({ name: x.name, values: x.values })),
            }),
          ),
        );
      else res.writeHead(404).end();
    }).listen(port, '127.0.0.1');
  }
  const who = { name: values.name, token: values.token };
  const refused = (error: string): void => {
    process.stderr.write(`server refused this worker: ${error}\n`);
    // A faulty worker plays the misbehaving one to the end: it keeps knocking (the server
    // closes the connection after a refusal; the disconnect handler reconnects).
    if (!fault.kind) process.exit(2);
  };
  if (values.server !== undefined) {
    new NodeLink(values.server, model, who, fault, refused);
    await new Promise(() => {}); // serve until killed
  }
  // Clustered: one link per node that has sent this worker a job, kept for the next ones.
  const links = new Map<string, NodeLink>();
  const linkTo = (node: string): NodeLink => {
    let link = links.get(node);
    if (!link) {
      link = new NodeLink(node, model, who, fault, (error) => {
        process.stderr.write(`node ${node} refused this worker: ${error}\n`);
        links.get(node)?.close();
        links.delete(node);
      });
      links.set(node, link);
    }
    return link;
  };
  const worker = new Worker<ClipJobData>(
    CLIP_QUEUE,
    async (job: Job<ClipJobData>) => {
      const { ticket, node } = job.data;
      if (typeof ticket !== 'string' || typeof node !== 'string' || !/^https?:\/\//.test(node))
        throw new Error('malformed clip job');
      // Not ours: the node gave the ticket to another worker or withdrew it (nothing to do).
      return (await linkTo(node).take(ticket)) ? 'served' : 'not claimed';
    },
    {
      connection: { url: values.queue },
      concurrency,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      maxStalledCount: 1,
      name: values.name,
    },
  );
  worker.on('error', (e) => process.stderr.write(`clip queue: ${e.message}\n`));
  await worker.waitUntilReady();
  process.stdout.write(`worker ${values.name} takes clips from ${values.queue} (${concurrency} at once)\n`);
  await new Promise(() => {}); // serve until killed
});
