import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { Server, type Socket } from 'socket.io';
import {
  type CameraState,
  type InputState,
  poseOfCamera,
  stepCamera,
} from '../../shared/camera/controller.ts';
import {
  type ClientToServerEvents,
  type ErrorCode,
  helloSchema,
  inputSchema,
  joinSchema,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_INPUTS_PER_SECOND,
  PROTOCOL_VERSION,
  promptSchema,
  type ServerToClientEvents,
  validate,
  type WorldStats,
} from '../../shared/protocol/events.ts';
import { downsampleDepthMm, encodeFrame, ImageFormat } from '../../shared/protocol/frameCodec.ts';
import { encodeRgbPng } from '../io/png.ts';
import { topDownMap } from '../memory/topDownMap.ts';
import type { WorldModel } from '../models/worldModel.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { WorldStore } from '../store/worldStore.ts';
import { type DirectedFrame, Director } from '../world/director.ts';
import { FrameQueue, RateLimiter } from './sendQueue.ts';
import { staticHandler } from './staticFiles.ts';
import { type World, WorldRegistry } from './worlds.ts';

export interface GameServerOptions {
  readonly port: number;
  readonly host: string;
  readonly model: WorldModel;
  readonly voxelSizeM: number;
  /** Frames per generated clip; 1 gives the lowest input-to-frame latency. */
  readonly clipFrames: number;
  readonly jpegQuality: number;
  /** Frames waiting to be sent per player before the oldest is dropped. */
  readonly queueFrames: number;
  /** Built client to serve at `/` (absent: socket.io only). */
  readonly clientDir?: string;
  readonly logger: Logger;
  /** Durable worlds (absent: worlds live in RAM only). */
  readonly store?: WorldStore;
  /** How often changed memory is committed to the store. */
  readonly commitIntervalMs?: number;
}

/** Chunks within this distance of a player are kept in (or brought back to) RAM. */
const RESIDENT_RADIUS_M = 30;
/** Committed chunks farther than this from every player may leave RAM. */
const EVICT_RADIUS_M = 45;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly worlds: WorldRegistry;
  close(): Promise<void>;
}

type GameSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** Unacknowledged frames in flight per player: frames wait in the queue (newest wins) beyond this. */
const SEND_WINDOW = 2;
const DEPTH_DOWNSAMPLE = 2;
const MAP_EVERY_TICKS = 3;

interface Player {
  readonly id: string;
  readonly name: string;
  readonly socket: GameSocket;
  readonly world: World;
  readonly director: Director;
  camera: CameraState;
  inputSeq: number;
  inputClientTimeMs: number;
  active: boolean;
  readonly abort: AbortController;
  readonly queue: FrameQueue<Uint8Array>;
  inFlight: number;
  frames: number;
}

/**
 * The game server: the built client and a socket.io endpoint (websocket transport) on one port.
 * Players join worlds by id; each gets a director over the world's shared memory and a loop that
 * generates frames at its current camera and streams them as binary.
 */
export async function startGameServer(o: GameServerOptions): Promise<RunningServer> {
  const log = o.logger;
  const worlds = new WorldRegistry(o.voxelSizeM, o.store);
  const players = new Map<string, Player>();
  const info = o.model.describe();
  const http = createServer(
    o.clientDir ? staticHandler(o.clientDir) : (_req, res) => res.writeHead(404).end(),
  );
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http, {
    transports: ['websocket'],
    // Hard cap per websocket message; bigger ones close that connection (engine.io). Messages under
    // it but over MAX_CLIENT_MESSAGE_BYTES get a TOO_LARGE error and are ignored.
    maxHttpBufferSize: 1 << 20,
    serveClient: false,
  });
  let nextPlayer = 1;

  io.on('connection', (socket) => {
    let greeted = false;
    let player: Player | undefined;
    const errorLimiter = new RateLimiter(20, 40, performance.now());
    const inputLimiter = new RateLimiter(MAX_INPUTS_PER_SECOND, MAX_INPUTS_PER_SECOND, performance.now());
    const fail = (code: ErrorCode, message: string, event?: string): void => {
      if (errorLimiter.take(performance.now())) socket.emit('error', { code, message, event });
    };
    const tooLarge = (payload: unknown): boolean => {
      try {
        return JSON.stringify(payload ?? null).length > MAX_CLIENT_MESSAGE_BYTES;
      } catch {
        return true;
      }
    };
    const replyError = (ack: unknown, code: ErrorCode, message: string, event: string): void => {
      if (typeof ack === 'function') ack({ ok: false, error: { code, message, event } });
      else fail(code, message, event);
    };

    socket.on('hello', (hello, ack) => {
      if (tooLarge(hello)) return replyError(ack, 'TOO_LARGE', 'hello is too large', 'hello');
      const v = validate(helloSchema, hello);
      if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `hello: ${v.reason}`, 'hello');
      if (v.value.protocol !== PROTOCOL_VERSION)
        return replyError(
          ack,
          'VERSION_MISMATCH',
          `server speaks protocol ${PROTOCOL_VERSION}, client ${v.value.protocol}: reload the page`,
          'hello',
        );
      greeted = true;
      if (typeof ack === 'function')
        ack({
          ok: true,
          value: {
            protocol: PROTOCOL_VERSION,
            server: 'spatia',
            model: {
              name: info.name,
              width: info.width,
              height: info.height,
              fps: info.fps,
              device: info.device,
            },
          },
        });
    });

    socket.on('join', (join, ack) => {
      if (tooLarge(join)) return replyError(ack, 'TOO_LARGE', 'join is too large', 'join');
      if (!greeted) return replyError(ack, 'NOT_JOINED', 'say hello (protocol version) first', 'join');
      if (player) return replyError(ack, 'ALREADY_JOINED', `already in world ${player.world.id}`, 'join');
      const v = validate(joinSchema, join);
      if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `join: ${v.reason}`, 'join');
      const world = worlds.getOrCreate(v.value.worldId, v.value.prompt, v.value.seed);
      const director = new Director(world.memory, o.model, { prompt: world.prompt });
      const camera = world.spawn();
      if (!world.seeded) {
        world.seeded = true;
        if (world.scene) {
          const pose = poseOfCamera(camera);
          const gt = renderScene(world.scene, pose, director.intrinsics, { timeS: world.timeS() });
          director.seedFrame(gt, pose, gt.dynamicMask);
        }
      }
      const id = `p${nextPlayer++}`;
      player = {
        id,
        name: v.value.name,
        socket,
        world,
        director,
        camera,
        inputSeq: 0,
        inputClientTimeMs: 0,
        active: true,
        abort: new AbortController(),
        queue: new FrameQueue(o.queueFrames),
        inFlight: 0,
        frames: 0,
      };
      players.set(id, player);
      world.players.add(id);
      void socket.join(`world:${world.id}`);
      log.info({ player: id, name: player.name, world: world.id }, 'player joined');
      if (typeof ack === 'function')
        ack({
          ok: true,
          value: {
            worldId: world.id,
            playerId: id,
            prompt: world.prompt,
            spawn: { position: [...camera.position], yaw: camera.yaw, pitch: camera.pitch },
            intrinsics: { ...director.intrinsics },
          },
        });
      void runPlayer(player);
    });

    socket.on('input', (input) => {
      if (!inputLimiter.take(performance.now()))
        return fail('RATE_LIMITED', `more than ${MAX_INPUTS_PER_SECOND} inputs/s`, 'input');
      if (tooLarge(input)) return fail('TOO_LARGE', 'input is too large', 'input');
      if (!player) return fail('NOT_JOINED', 'join a world before sending input', 'input');
      const v = validate(inputSchema, input);
      if (!v.ok) return fail('BAD_MESSAGE', `input: ${v.reason}`, 'input');
      const i = v.value;
      const state: InputState = i;
      player.camera = stepCamera(player.camera, state, Math.min(i.dtMs, 100) / 1000);
      player.inputSeq = i.seq;
      player.inputClientTimeMs = i.clientTimeMs;
    });

    socket.on('prompt', (p) => {
      if (tooLarge(p)) return fail('TOO_LARGE', 'prompt is too large', 'prompt');
      if (!player) return fail('NOT_JOINED', 'join a world before prompting', 'prompt');
      const v = validate(promptSchema, p);
      if (!v.ok) return fail('BAD_MESSAGE', `prompt: ${v.reason}`, 'prompt');
      player.world.prompt = v.value.prompt;
      for (const id of player.world.players) {
        const other = players.get(id);
        if (other) other.director.prompt = v.value.prompt;
      }
      log.info({ world: player.world.id, prompt: v.value.prompt }, 'prompt changed');
    });

    const leave = (): void => {
      if (!player) return;
      player.active = false;
      player.abort.abort();
      player.queue.clear();
      players.delete(player.id);
      player.world.players.delete(player.id);
      void socket.leave(`world:${player.world.id}`);
      log.info({ player: player.id, frames: player.frames, dropped: player.queue.dropped }, 'player left');
      player = undefined;
    };
    socket.on('leave', leave);
    socket.on('disconnect', leave);
  });

  /** Sends queued frames while fewer than SEND_WINDOW are unacknowledged. */
  const pump = (p: Player): void => {
    while (p.active && p.inFlight < SEND_WINDOW && p.queue.length > 0) {
      const bytes = p.queue.shift()!;
      p.inFlight++;
      p.socket.timeout(5000).emit('frame', bytes, () => {
        p.inFlight--;
        pump(p);
      });
    }
  };

  const encode = async (
    p: Player,
    f: DirectedFrame,
    seq: number,
    clientTimeMs: number,
  ): Promise<Uint8Array> => {
    const t0 = performance.now();
    const k = p.director.intrinsics;
    const jpeg = await sharp(f.rgb, { raw: { width: k.width, height: k.height, channels: 3 } })
      .jpeg({ quality: o.jpegQuality })
      .toBuffer();
    const depth = f.depth
      ? downsampleDepthMm(f.depth, k.width, k.height, DEPTH_DOWNSAMPLE)
      : {
          depthMm: new Uint16Array((k.width / DEPTH_DOWNSAMPLE) * (k.height / DEPTH_DOWNSAMPLE)),
          width: k.width / DEPTH_DOWNSAMPLE,
          height: k.height / DEPTH_DOWNSAMPLE,
        };
    return encodeFrame({
      header: {
        frameId: p.frames,
        clipId: f.clipId,
        rotation: [...f.pose.rotation],
        position: [...f.pose.position],
        intrinsics: { ...k },
        inputSeq: seq,
        clientTimeMs,
        serverTimeMs: performance.now(),
        timings: { ...f.timings, encodeMs: performance.now() - t0 },
      },
      imageFormat: ImageFormat.Jpeg,
      image: new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength),
      depthWidth: depth.width,
      depthHeight: depth.height,
      depthMm: depth.depthMm,
    });
  };

  /** One player's generation loop: a clip at the current camera, paced to the model's frame rate. */
  const runPlayer = async (p: Player): Promise<void> => {
    const intervalMs = 1000 / info.fps;
    let clip = 0;
    let due = performance.now();
    while (p.active) {
      if (o.store && clip % 30 === 0)
        o.store.loadChunksNear(p.world.id, p.world.memory, p.camera.position, RESIDENT_RADIUS_M);
      const seq = p.inputSeq;
      const clientTimeMs = p.inputClientTimeMs;
      const poses =
        o.clipFrames === 1
          ? [poseOfCamera(p.camera)]
          : p.director
              .planClip(p.camera, {
                keys: 0,
                lookDxPx: 0,
                lookDyPx: 0,
                padMoveX: 0,
                padMoveY: 0,
                padLookX: 0,
                padLookY: 0,
              })
              .poses.slice(0, o.clipFrames);
      try {
        for await (const f of p.director.runClip(poses, {
          seed: (p.world.seed + clip++) >>> 0,
          timeS: p.world.timeS(),
          signal: p.abort.signal,
        })) {
          const bytes = await encode(p, f, seq, clientTimeMs);
          p.frames++;
          p.queue.push(bytes);
          pump(p);
        }
      } catch (e) {
        if (!p.active) return;
        log.error({ err: e, player: p.id }, 'generation failed');
        p.socket.emit('error', { code: 'INTERNAL', message: `generation failed: ${(e as Error).message}` });
        await new Promise((r) => setTimeout(r, 1000));
      }
      due += intervalMs * poses.length;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else {
        due = performance.now();
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  };

  let tick = 0;
  const statsTimer = setInterval(() => {
    tick++;
    for (const id of new Set([...players.values()].map((p) => p.world.id))) {
      const world = worlds.get(id)!;
      const s = world.memory.stats();
      let map: WorldStats['map'];
      if (tick % MAP_EVERY_TICKS === 1 && s.voxels > 0) {
        const m = topDownMap(world.memory.grid, 16);
        map = {
          png: encodeRgbPng(m.rgb, m.width, m.height),
          minX: m.originX,
          minZ: m.originZ,
          pxPerM: m.pxPerM,
        };
      }
      io.to(`world:${id}`).emit('stats', {
        worldId: id,
        voxels: s.voxels,
        keyframes: s.keyframes,
        memoryBytes: s.bytes,
        players: world.players.size,
        map,
      });
    }
  }, 1000);

  /** Commits every world's changed chunks and new keyframes; evicts far chunks now and then. */
  let commits = 0;
  const commitAll = (): void => {
    if (!o.store) return;
    commits++;
    for (const world of worlds.all()) {
      try {
        const c = o.store.commit(world.id, world.memory);
        if (c.chunks + c.keyframes > 0) log.debug({ world: world.id, ...c }, 'committed');
        if (commits % 10 === 0) {
          const positions = [...world.players].map((id) => players.get(id)?.camera.position ?? [0, 0, 0]);
          if (positions.length > 0) o.store.evictChunks(world.id, world.memory, positions, EVICT_RADIUS_M);
        }
      } catch (e) {
        log.error({ err: e, world: world.id }, 'commit failed');
      }
    }
  };
  const commitTimer = setInterval(commitAll, o.commitIntervalMs ?? 1000);

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port, o.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${o.host === '0.0.0.0' ? 'localhost' : o.host}:${port}/`;
  log.info({ url, model: info.name, device: info.device }, 'spatia server listening');
  return {
    url,
    port,
    worlds,
    close: async () => {
      clearInterval(statsTimer);
      clearInterval(commitTimer);
      commitAll();
      for (const p of players.values()) {
        p.active = false;
        p.abort.abort();
      }
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
