import { parseArgs } from 'node:util';
import { io, type Socket } from 'socket.io-client';
import type { Mat3 } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import {
  bytesOf,
  float32Of,
  type ServerToWorkerEvents,
  type WireClipRequest,
  type WireConditioningFrame,
  WORKER_NAMESPACE,
  WORKER_PATH,
  WORKER_PROTOCOL,
  type WorkerToServerEvents,
} from '../../shared/protocol/worker.ts';
import { loadModel } from '../models/registry.ts';
import type { ClipRequest, ConditioningFrame } from '../models/worldModel.ts';
import { intArg, runTool } from '../tools/cli.ts';

const USAGE = `usage: npm run worker -- --server URL [--model procedural] [--name NAME] [--token T]
                      [--fault crash|stall|malformed --fault-after N]

A reference remote worker: connects to a Spatia server started with --model remote, serves clip
requests with a local model (any --model name), and streams the frames back. It reconnects when
the server restarts or drops it, and exits (status 2) when the server refuses it (wrong token, no
token from a non-loopback address, a model that does not fit, or quarantine after stalling or
malformed frames). --fault injects a failure after N frames (for testing the server's handling);
a worker with --fault that is refused tries again every second instead of exiting.`;

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

runTool(USAGE, async () => {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      model: { type: 'string', default: 'procedural' },
      name: { type: 'string', default: `worker-${process.pid}` },
      token: { type: 'string' },
      fault: { type: 'string' },
      'fault-after': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.server) throw new SpatiaError('INVALID_ARGUMENT', '--server URL is required');
  const fault = values.fault;
  if (fault !== undefined && !['crash', 'stall', 'malformed'].includes(fault))
    throw new SpatiaError('INVALID_ARGUMENT', `--fault must be crash, stall or malformed, got "${fault}"`);
  const faultAfter = intArg('fault-after', values['fault-after'], 0, 1_000_000);
  const model = await loadModel(values.model);
  const info = model.describe();
  const socket: Socket<ServerToWorkerEvents, WorkerToServerEvents> = io(
    new URL(WORKER_NAMESPACE, values.server).href,
    { path: WORKER_PATH, transports: ['websocket'] },
  );
  const running = new Map<string, AbortController>();
  let framesSent = 0;
  socket.on('connect', () => {
    socket.emit(
      'hello',
      { protocol: WORKER_PROTOCOL, name: values.name, token: values.token, model: { ...info } },
      (r) => {
        if (!r.ok) {
          process.stderr.write(`server refused this worker: ${r.error}\n`);
          // A faulty worker plays the misbehaving one to the end: it keeps knocking (the server
          // closes the connection after a refusal; the disconnect handler reconnects).
          if (!fault) process.exit(2);
          return;
        }
        process.stdout.write(
          `worker ${values.name} serving ${info.name} ${info.width}×${info.height} (${info.device})\n`,
        );
      },
    );
  });
  socket.on('cancel', ({ requestId }) => running.get(requestId)?.abort());
  socket.on('disconnect', (reason) => {
    // The server has given up on whatever was running here.
    for (const abort of running.values()) abort.abort();
    // socket.io reconnects by itself after a lost connection, not after the server dropped this
    // worker: reconnect then too (the server's answer to the new hello says whether it may serve).
    if (reason === 'io server disconnect') {
      process.stderr.write('the server dropped this worker; reconnecting in 1 s\n');
      setTimeout(() => socket.connect(), 1000);
    }
  });
  socket.on('clip', async (wire: WireClipRequest) => {
    const abort = new AbortController();
    running.set(wire.requestId, abort);
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
    try {
      for await (const f of model.generate(req)) {
        if (fault && framesSent >= faultAfter) {
          if (fault === 'crash') process.kill(process.pid, 'SIGKILL');
          if (fault === 'stall') return; // never answers again
          if (fault === 'malformed') {
            socket.emit('frame', {
              requestId: wire.requestId,
              index: f.index,
              rgb: f.rgb.subarray(0, 100),
              generateMs: 1,
            });
            continue;
          }
        }
        socket.emit('frame', {
          requestId: wire.requestId,
          index: f.index,
          rgb: f.rgb,
          ...(f.depth ? { depth: bytesOf(f.depth) } : {}),
          ...(f.dynamicMask ? { dynamicMask: f.dynamicMask } : {}),
          generateMs: f.generateMs,
        });
        framesSent++;
      }
      socket.emit('done', { requestId: wire.requestId });
    } catch (e) {
      // Cancelled, or dropped with the connection: nobody is waiting for an answer.
      if (!abort.signal.aborted)
        socket.emit('failed', { requestId: wire.requestId, message: (e as Error).message });
    } finally {
      running.delete(wire.requestId);
    }
  });
  await new Promise(() => {}); // serve until killed
});
