import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { CameraState } from '../../shared/camera/controller.ts';
import {
  type ClientToServerEvents,
  type ErrorCode,
  helloSchema,
  inputSchema,
  type Joined,
  joinSchema,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_INPUTS_PER_SECOND,
  PROTOCOL_VERSION,
  promptSchema,
  type ServerToClientEvents,
  validate,
} from '../../shared/protocol/events.ts';
import type { WorldModel } from '../models/worldModel.ts';
import type { RemoteWorkerPool } from '../remote/workerPool.ts';
import type { WorldStore } from '../store/worldStore.ts';
import type { SendFrame } from '../world/frameChannel.ts';
import { PlayerSession } from '../world/playerSession.ts';
import type { World } from '../world/world.ts';
import { WorldRegistry } from '../world/worldRegistry.ts';
import { RateLimiter } from './rateLimiter.ts';
import { staticHandler } from './staticFiles.ts';

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

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly worlds: WorldRegistry;
  close(): Promise<void>;
}

type GameSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A frame a client has not acknowledged within this time no longer holds its send window. */
const FRAME_ACK_TIMEOUT_MS = 5000;
/** World stats go out every second; the minimap every this many. */
const MAP_EVERY_TICKS = 3;
/** Errors a connection is sent per second (bursts to twice that); the rest are dropped. */
const ERRORS_PER_SECOND = 20;

const room = (world: World): string => `world:${world.id}`;

/**
 * The socket edge of the game: the built client and a socket.io endpoint (websocket transport) on
 * one port. It validates every message, routes it to the player's session or the world, and sends
 * what they produce. Worlds and player sessions (server/world/) do the rest.
 */
export async function startGameServer(o: GameServerOptions): Promise<RunningServer> {
  const log = o.logger;
  const worlds = new WorldRegistry(o.voxelSizeM, o.store, log);
  const sessions = new Set<PlayerSession>();
  const info = o.model.describe();
  const settings = {
    model: o.model,
    clipFrames: o.clipFrames,
    jpegQuality: o.jpegQuality,
    queueFrames: o.queueFrames,
    store: o.store,
    log,
  };
  const http = createServer(
    o.clientDir ? staticHandler(o.clientDir) : (_req, res) => res.writeHead(404).end(),
  );
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http, {
    transports: ['websocket'],
    // engine.io closes a connection whose message is larger than this: the documented limit, plus
    // room for socket.io's framing of one event.
    maxHttpBufferSize: MAX_CLIENT_MESSAGE_BYTES + 1024,
    serveClient: false,
  });
  let nextPlayer = 1;
  o.workers?.attach(http);

  io.on('connection', (socket: GameSocket) => {
    let greeted = false;
    let player: PlayerSession | undefined;
    let watching: { target: PlayerSession; stop: () => void; name: string } | undefined;
    const errorLimiter = new RateLimiter(ERRORS_PER_SECOND, 2 * ERRORS_PER_SECOND, performance.now());
    const inputLimiter = new RateLimiter(MAX_INPUTS_PER_SECOND, MAX_INPUTS_PER_SECOND, performance.now());
    const fail = (code: ErrorCode, message: string, event?: string): void => {
      if (errorLimiter.take(performance.now())) socket.emit('error', { code, message, event });
    };
    const replyError = (ack: unknown, code: ErrorCode, message: string, event: string): void => {
      if (typeof ack === 'function') ack({ ok: false, error: { code, message, event } });
      else fail(code, message, event);
    };
    const sendFrame: SendFrame = (bytes, onAck) =>
      socket.timeout(FRAME_ACK_TIMEOUT_MS).emit('frame', bytes, () => onAck());

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
      const reply = (value: Joined): void => {
        if (typeof ack === 'function') ack({ ok: true, value });
      };
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
        const target = [...sessions].find(
          (s) => s.world === existing && (s.id === j.spectate || s.name === j.spectate),
        );
        if (!target)
          return replyError(ack, 'NOT_FOUND', `no player "${j.spectate}" in world "${j.worldId}"`, 'join');
        const channel = target.watch(sendFrame);
        watching = { target, stop: () => target.unwatch(channel), name: j.name };
        void socket.join(room(existing));
        io.to(room(existing)).emit('announce', {
          kind: 'joined',
          name: j.name,
          playerId: target.id,
          role: 'spectator',
        });
        log.info({ spectator: j.name, watching: target.id, world: existing.id }, 'spectator joined');
        return reply({
          worldId: existing.id,
          playerId: target.id,
          role: 'spectator',
          prompt: existing.prompt,
          spawn: spawnOf(target.camera),
          intrinsics: { ...target.director.intrinsics },
          others: existing.players.map((m) => m.name),
          inviteToken: existing.inviteToken,
        });
      }
      if (j.record && !o.store)
        return replyError(
          ack,
          'BAD_MESSAGE',
          'recording needs a world store (start the server with --store)',
          'join',
        );
      const token = existing ? undefined : j.private ? randomBytes(18).toString('base64url') : undefined;
      const world = existing ?? worlds.getOrCreate(j.worldId, j.prompt, j.seed, token);
      const session = new PlayerSession(
        world,
        nextPlayer++,
        j.name,
        settings,
        { sendFrame, onError: (e) => socket.emit('error', e) },
        j.record === true,
      );
      const others = world.players.map((m) => m.name);
      player = session;
      sessions.add(session);
      session.start();
      void socket.join(room(world));
      io.to(room(world)).emit('announce', {
        kind: 'joined',
        name: j.name,
        playerId: session.id,
        role: 'player',
      });
      log.info(
        { player: session.id, name: session.name, world: world.id, recording: session.recordingId },
        'player joined',
      );
      reply({
        worldId: world.id,
        playerId: session.id,
        role: 'player',
        prompt: world.prompt,
        spawn: spawnOf(session.camera),
        intrinsics: { ...session.director.intrinsics },
        others,
        inviteToken: world.inviteToken,
        sessionId: session.recordingId,
      });
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
      player.applyInput(v.value);
    });

    socket.on('prompt', (p) => {
      if (tooLarge(p)) return fail('TOO_LARGE', 'prompt is too large', 'prompt');
      if (!player) return fail('NOT_JOINED', 'join a world before prompting', 'prompt');
      const v = validate(promptSchema, p);
      if (!v.ok) return fail('BAD_MESSAGE', `prompt: ${v.reason}`, 'prompt');
      player.world.prompt = v.value.prompt;
      log.info({ world: player.world.id, prompt: v.value.prompt }, 'prompt changed');
    });

    const leave = (): void => {
      if (watching) {
        const w = watching;
        w.stop();
        io.to(room(w.target.world)).emit('announce', {
          kind: 'left',
          name: w.name,
          playerId: w.target.id,
          role: 'spectator',
        });
        void socket.leave(room(w.target.world));
        watching = undefined;
      }
      if (!player) return;
      const p = player;
      p.leave();
      sessions.delete(p);
      void socket.leave(room(p.world));
      io.to(room(p.world)).emit('announce', { kind: 'left', name: p.name, playerId: p.id, role: 'player' });
      log.info({ player: p.id, frames: p.frames, dropped: p.dropped }, 'player left');
      player = undefined;
    };
    socket.on('leave', leave);
    socket.on('disconnect', leave);
  });

  let tick = 0;
  const statsTimer = setInterval(() => {
    tick++;
    for (const world of new Set([...sessions].map((s) => s.world)))
      io.to(room(world)).emit('stats', world.stats(tick % MAP_EVERY_TICKS === 1));
  }, 1000);
  worlds.startCommitting(o.commitIntervalMs ?? 1000);

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
      for (const s of sessions) s.leave();
      worlds.dispose();
      await o.workers?.dispose();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

/** A camera as the join answer carries it (the client predicts from it). */
const spawnOf = (c: CameraState): Joined['spawn'] => ({
  position: [...c.position],
  yaw: c.yaw,
  pitch: c.pitch,
});

/** Whether a message's JSON form is over the documented limit (a message that cannot be serialised is). */
function tooLarge(payload: unknown): boolean {
  try {
    return JSON.stringify(payload ?? null).length > MAX_CLIENT_MESSAGE_BYTES;
  } catch {
    return true;
  }
}
