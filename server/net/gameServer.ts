import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { Server, type Socket } from 'socket.io';
import {
  type CameraState,
  type InputState,
  NO_INPUT,
  poseOfCamera,
  stepCamera,
} from '../../shared/camera/controller.ts';
import { crc32 } from '../../shared/codec/crc32.ts';
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
import type { RemoteWorkerPool } from '../remote/workerPool.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { WorldStore } from '../store/worldStore.ts';
import { type DirectedFrame, Director } from '../world/director.ts';
import { type Avatar, avatarColor, compositeAvatars } from './avatars.ts';
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
  /** Remote workers (`--model remote`): attached to this server's socket.io under /workers. */
  readonly workers?: RemoteWorkerPool;
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
/** A clip whose view the memory covers less than this (quarter resolution) invents, under the world's lock. */
const INVENTS_BELOW_COVERAGE = 0.98;

/** A clip's seed from the world's seed, the player and the clip index (32-bit mix). */
export function mixSeed(worldSeed: number, player: number, clip: number): number {
  let h = worldSeed ^ Math.imul(player + 1, 0x9e3779b1) ^ Math.imul(clip + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Someone a player's frames go to: the player, or a spectator watching them. */
interface Viewer {
  readonly socket: GameSocket;
  readonly queue: FrameQueue<Uint8Array>;
  inFlight: number;
  active: boolean;
}

interface Player extends Viewer {
  readonly id: string;
  /** Numeric part of the id (mixes into clip seeds). */
  readonly index: number;
  readonly name: string;
  readonly world: World;
  readonly director: Director;
  camera: CameraState;
  inputSeq: number;
  inputClientTimeMs: number;
  readonly abort: AbortController;
  frames: number;
  readonly spectators: Set<Viewer>;
  /** Recording session id, when recording. */
  readonly sessionId?: string;
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
  o.workers?.attach(io);

  io.on('connection', (socket) => {
    let greeted = false;
    let player: Player | undefined;
    let watching: { target: Player; viewer: Viewer; name: string } | undefined;
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
      if (player || watching) return replyError(ack, 'ALREADY_JOINED', 'already in a world', 'join');
      const v = validate(joinSchema, join);
      if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `join: ${v.reason}`, 'join');
      const j = v.value;
      // Private worlds: nothing of the world is sent (not even whether it has players) without the token.
      const existing = worlds.find(j.worldId);
      if (existing?.inviteToken !== undefined && j.inviteToken !== existing.inviteToken)
        return replyError(
          ack,
          'FORBIDDEN',
          `world "${j.worldId}" is private: joining needs its invite token`,
          'join',
        );
      if (j.spectate !== undefined) {
        if (!existing) return replyError(ack, 'NOT_FOUND', `no world "${j.worldId}" to watch`, 'join');
        const target = [...existing.players]
          .map((id) => players.get(id))
          .find((p) => p && (p.id === j.spectate || p.name === j.spectate));
        if (!target)
          return replyError(ack, 'NOT_FOUND', `no player "${j.spectate}" in world "${j.worldId}"`, 'join');
        const viewer: Viewer = { socket, queue: new FrameQueue(o.queueFrames), inFlight: 0, active: true };
        target.spectators.add(viewer);
        watching = { target, viewer, name: j.name };
        void socket.join(`world:${existing.id}`);
        io.to(`world:${existing.id}`).emit('announce', {
          kind: 'joined',
          name: j.name,
          playerId: target.id,
          role: 'spectator',
        });
        log.info({ spectator: j.name, watching: target.id, world: existing.id }, 'spectator joined');
        if (typeof ack === 'function')
          ack({
            ok: true,
            value: {
              worldId: existing.id,
              playerId: target.id,
              role: 'spectator',
              prompt: existing.prompt,
              spawn: {
                position: [...target.camera.position],
                yaw: target.camera.yaw,
                pitch: target.camera.pitch,
              },
              intrinsics: { ...target.director.intrinsics },
              others: namesIn(existing),
              inviteToken: existing.inviteToken,
            },
          });
        return;
      }
      const token = existing ? undefined : j.private ? randomBytes(18).toString('base64url') : undefined;
      const world = existing ?? worlds.getOrCreate(j.worldId, j.prompt, j.seed, token);
      const director = new Director(world.memory, o.model, { prompt: world.prompt });
      const camera = world.spawn();
      const index = nextPlayer++;
      const id = `p${index}`;
      let sessionId: string | undefined;
      const seedFromScene = !world.seeded && world.scene !== undefined;
      if (j.record && o.store) {
        const pose = poseOfCamera(camera);
        sessionId = o.store.sessions.start({
          worldId: world.id,
          player: j.name,
          model: info.name,
          width: info.width,
          height: info.height,
          fps: info.fps,
          prompt: world.prompt,
          startSnapshot: world.memory.save(),
          seededFrom: seedFromScene
            ? { scene: world.id, rotation: [...pose.rotation], position: [...pose.position], timeS: 0 }
            : undefined,
        });
      } else if (j.record) {
        return replyError(
          ack,
          'BAD_MESSAGE',
          'recording needs a world store (start the server with --store)',
          'join',
        );
      }
      if (!world.seeded) {
        world.seeded = true;
        if (world.scene) {
          const pose = poseOfCamera(camera);
          // World time 0: the seed frame is part of the world's definition (replay repeats it).
          const gt = renderScene(world.scene, pose, director.intrinsics, { timeS: 0 });
          director.seedFrame(gt, pose, gt.dynamicMask);
        }
      }
      const others = namesIn(world);
      player = {
        id,
        index,
        name: j.name,
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
        spectators: new Set(),
        sessionId,
      };
      players.set(id, player);
      world.players.add(id);
      void socket.join(`world:${world.id}`);
      io.to(`world:${world.id}`).emit('announce', {
        kind: 'joined',
        name: j.name,
        playerId: id,
        role: 'player',
      });
      log.info({ player: id, name: player.name, world: world.id, recording: sessionId }, 'player joined');
      if (typeof ack === 'function')
        ack({
          ok: true,
          value: {
            worldId: world.id,
            playerId: id,
            role: 'player',
            prompt: world.prompt,
            spawn: { position: [...camera.position], yaw: camera.yaw, pitch: camera.pitch },
            intrinsics: { ...director.intrinsics },
            others,
            inviteToken: world.inviteToken,
            sessionId,
          },
        });
      void runPlayer(player);
    });

    socket.on('input', (input) => {
      if (!inputLimiter.take(performance.now()))
        return fail('RATE_LIMITED', `more than ${MAX_INPUTS_PER_SECOND} inputs/s`, 'input');
      if (tooLarge(input)) return fail('TOO_LARGE', 'input is too large', 'input');
      if (!player)
        return fail(
          'NOT_JOINED',
          watching ? 'spectators do not send input' : 'join a world before sending input',
          'input',
        );
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
      if (watching) {
        const w = watching;
        w.viewer.active = false;
        w.target.spectators.delete(w.viewer);
        io.to(`world:${w.target.world.id}`).emit('announce', {
          kind: 'left',
          name: w.name,
          playerId: w.target.id,
          role: 'spectator',
        });
        void socket.leave(`world:${w.target.world.id}`);
        watching = undefined;
      }
      if (!player) return;
      const p = player;
      p.active = false;
      p.abort.abort();
      p.queue.clear();
      players.delete(p.id);
      p.world.players.delete(p.id);
      if (p.sessionId && o.store) o.store.sessions.end(p.sessionId);
      void socket.leave(`world:${p.world.id}`);
      io.to(`world:${p.world.id}`).emit('announce', {
        kind: 'left',
        name: p.name,
        playerId: p.id,
        role: 'player',
      });
      log.info({ player: p.id, frames: p.frames, dropped: p.queue.dropped }, 'player left');
      player = undefined;
    };
    socket.on('leave', leave);
    socket.on('disconnect', leave);
  });

  /** Sends a viewer's queued frames while fewer than SEND_WINDOW are unacknowledged. */
  const pump = (v: Viewer): void => {
    while (v.active && v.inFlight < SEND_WINDOW && v.queue.length > 0) {
      const bytes = v.queue.shift()!;
      v.inFlight++;
      v.socket.timeout(5000).emit('frame', bytes, () => {
        v.inFlight--;
        pump(v);
      });
    }
  };

  const namesIn = (world: World): string[] => [...world.players].map((id) => players.get(id)?.name ?? id);

  /** The other players of `p`'s world, as avatars. */
  const avatarsFor = (p: Player): Avatar[] =>
    [...p.world.players]
      .filter((id) => id !== p.id)
      .map((id) => players.get(id))
      .filter((q): q is Player => q !== undefined)
      .map((q) => ({ name: q.name, eye: q.camera.position, color: avatarColor(q.id) }));

  const encode = async (
    p: Player,
    f: DirectedFrame,
    seq: number,
    clientTimeMs: number,
  ): Promise<{ bytes: Uint8Array; jpeg: Uint8Array }> => {
    const t0 = performance.now();
    const k = p.director.intrinsics;
    const avatars = avatarsFor(p);
    const rgb = avatars.length > 0 ? f.rgb.slice() : f.rgb;
    compositeAvatars(rgb, f.depth, f.pose, k, avatars);
    const jpeg = await sharp(rgb, { raw: { width: k.width, height: k.height, channels: 3 } })
      .jpeg({ quality: o.jpegQuality })
      .toBuffer();
    const depth = f.depth
      ? downsampleDepthMm(f.depth, k.width, k.height, DEPTH_DOWNSAMPLE)
      : {
          depthMm: new Uint16Array((k.width / DEPTH_DOWNSAMPLE) * (k.height / DEPTH_DOWNSAMPLE)),
          width: k.width / DEPTH_DOWNSAMPLE,
          height: k.height / DEPTH_DOWNSAMPLE,
        };
    const image = new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
    const bytes = encodeFrame({
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
      image,
      depthWidth: depth.width,
      depthHeight: depth.height,
      depthMm: depth.depthMm,
    });
    return { bytes, jpeg: image };
  };

  /**
   * One player's generation loop: a clip at the current camera, paced to the model's frame rate.
   * A clip that will invent (the memory does not cover its view) runs under the world's
   * invention lock, so two players never invent the same unseen place differently.
   */
  const runPlayer = async (p: Player): Promise<void> => {
    const intervalMs = 1000 / info.fps;
    let clip = 0;
    let frameIndex = 0;
    let due = performance.now();
    while (p.active) {
      if (o.store && clip % 30 === 0)
        o.store.loadChunksNear(p.world.id, p.world.memory, p.camera.position, RESIDENT_RADIUS_M);
      const seq = p.inputSeq;
      const clientTimeMs = p.inputClientTimeMs;
      const poses =
        o.clipFrames === 1
          ? [poseOfCamera(p.camera)]
          : p.director.planClip(p.camera, NO_INPUT).poses.slice(0, o.clipFrames);
      // Each player's clips get their own seeds (a real model is stochastic; inventions would differ).
      const seed = mixSeed(p.world.seed, p.index, clip);
      const timeS = p.world.timeS();
      const clipIndex = clip++;
      const prompt = p.world.prompt;
      const generateClip = async (): Promise<void> => {
        if (p.sessionId && o.store)
          o.store.sessions.clip(p.sessionId, {
            index: clipIndex,
            rotations: poses.map((q) => [...q.rotation]),
            positions: poses.map((q) => [...q.position]),
            seed,
            timeS,
            prompt,
            inputSeq: seq,
          });
        for await (const f of p.director.runClip(poses, { seed, timeS, signal: p.abort.signal })) {
          const { bytes, jpeg } = await encode(p, f, seq, clientTimeMs);
          if (p.sessionId && o.store)
            o.store.sessions.frame(p.sessionId, {
              index: frameIndex,
              clipIndex,
              jpeg,
              rgbCrc: crc32(f.rgb),
              timings: { ...f.timings },
            });
          frameIndex++;
          p.frames++;
          for (const v of [p, ...p.spectators]) {
            v.queue.push(bytes);
            pump(v);
          }
        }
      };
      try {
        const invents = poses.some((q) => p.director.coverageAt(q) < INVENTS_BELOW_COVERAGE);
        if (invents) await p.world.whileInventing(generateClip);
        else await generateClip();
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
    try {
      o.store.sessions.flush();
    } catch (e) {
      log.error({ err: e }, 'session log flush failed');
    }
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
