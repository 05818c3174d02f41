import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateRawSync } from 'node:zlib';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { CameraState } from '../../shared/camera/controller.ts';
import { editOpSchema } from '../../shared/edit/editOps.ts';
import { SpatiaError } from '../../shared/errors.ts';
import {
  type ClientToServerEvents,
  type ErrorCode,
  editHistorySchema,
  helloSchema,
  inputSchema,
  type Joined,
  type JoinRequest,
  joinSchema,
  lockEditingSchema,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_INPUTS_PER_SECOND,
  mirrorAckSchema,
  PROTOCOL_VERSION,
  promptSchema,
  rotateInviteSchema,
  type ServerError,
  type ServerToClientEvents,
  validate,
  WORLD_LIST_PROMPT_CHARS,
  type WorldList,
  type WorldListing,
} from '../../shared/protocol/events.ts';
import type { ControlBus } from '../cluster/controlBus.ts';
import type { WorldDirectory } from '../cluster/worldDirectory.ts';
import { DEFAULT_LIMITS, type ServerLimits } from '../limits.ts';
import type { WorldModel } from '../models/worldModel.ts';
import type { RemoteWorkerPool } from '../remote/workerPool.ts';
import { BUNDLED_SCENES } from '../scene/loadScene.ts';
import type { StoreHealth, WorldStore } from '../store/worldStore.ts';
import type { ViewRenderer } from '../world/director.ts';
import type { EditEvent } from '../world/editLog.ts';
import type { SendFrame } from '../world/frameChannel.ts';
import { PlayerSession, type SessionSettings } from '../world/playerSession.ts';
import type { World } from '../world/world.ts';
import { WorldRegistry } from '../world/worldRegistry.ts';
import { NodeMetrics } from './nodeMetrics.ts';
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
  /** How often changed memory is committed to the store (and idle worlds are unloaded). */
  readonly commitIntervalMs?: number;
  /** The budgets that protect the server (default DEFAULT_LIMITS; docs/operations.md). */
  readonly limits?: Partial<ServerLimits>;
  /** A frame not acknowledged within this time frees its place in the send window. */
  readonly frameAckTimeoutMs?: number;
  /** Renders memory views off the main thread (`ViewThreads`); the caller disposes it. */
  readonly views?: ViewRenderer;
  /**
   * Clustered mode: which node serves which world (Redis leases). A join for a world another node
   * serves is answered WORLD_ELSEWHERE with that node's URL. The caller closes it after the store.
   */
  readonly directory?: WorldDirectory;
  /** Clustered mode: socket.io's Redis streams adapter (`cluster/controlBus.ts`), so nodes can ask each other. */
  readonly adapter?: ControlBus['adapter'];
}

/** What nodes ask each other through the control bus. */
interface NodeEvents {
  'spatia:worlds': (ack: (worlds: WorldListing[]) => void) => void;
}

/** World lists a connection may ask for per minute. */
const WORLD_LISTS_PER_MINUTE = 30;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly worlds: WorldRegistry;
  /**
   * A test option: while paused, no player's generation loop starts a clip (frames stop as if the
   * model stalled); sockets, input and the memory mirror go on.
   */
  pauseGeneration(paused: boolean): void;
  close(): Promise<void>;
}

type GameSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A frame a client has not acknowledged within this time no longer holds its send window. */
const FRAME_ACK_TIMEOUT_MS = 5000;
/** Mirror batches go compressed (raw DEFLATE): level 1 took them to 1/1.7 in 1.3 ms per 48 KiB batch; level 6 to 1/1.74. */
const MIRROR_DEFLATE_LEVEL = 1;
/** Prompt log lines keep this many characters of the prompt. */
const LOGGED_PROMPT_CHARS = 80;
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
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...o.limits };
  const directory = o.directory;
  const worlds = new WorldRegistry(o.voxelSizeM, o.store, log, limits, (id) =>
    releaseWhenStored(id, directory, worlds, o.store, log),
  );
  if (directory)
    followLeases(directory, worlds, o.store, (lost) => {
      // Its players join again and are sent to the node that serves it now.
      const error: ServerError = {
        code: 'WORLD_ELSEWHERE',
        message: `another server node serves world "${lost.id}" now: join again`,
        event: 'join',
        retryAfterMs: 0,
      };
      io.to(room(lost)).emit('error', error);
      io.in(room(lost)).disconnectSockets(true);
    });
  const sessions = new Set<PlayerSession>();
  const info = o.model.describe();
  const ackTimeoutMs = o.frameAckTimeoutMs ?? FRAME_ACK_TIMEOUT_MS;
  const settings: SessionSettings = {
    model: o.model,
    clipFrames: o.clipFrames,
    jpegQuality: o.jpegQuality,
    queueFrames: o.queueFrames,
    store: o.store,
    log,
    unresponsiveMs: limits.unresponsiveMs,
    views: o.views,
    mirrorKbps: limits.mirrorKbps,
    generation: { paused: false },
  };
  const staticFiles = o.clientDir ? staticHandler(o.clientDir) : undefined;
  const clipQueue = o.workers?.clipQueue;
  const metrics = new NodeMetrics({
    players: () => sessions.size,
    worlds: () => worlds.size,
    leases:
      directory &&
      (() => ({
        held: directory.owned().length,
        headroomS: Math.min(directory.leaseHeadroomMs(), directory.leaseMs) / 1000,
      })),
    queueWaiting: clipQueue && (() => clipQueue.waiting()),
  });
  const http = createServer((req, res) => {
    if (req.url === HEALTH_PATH) return sendHealth(res, health());
    if (req.url === METRICS_PATH) {
      void metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
      return;
    }
    if (staticFiles) staticFiles(req, res);
    else res.writeHead(404).end();
  });
  /** What /healthz reports: degraded (503) while the store fails or a world is quarantined. */
  const health = (): Health => {
    const store: StoreHealth | { ok: true; kind: 'none' } = o.store
      ? o.store.health()
      : { ok: true, kind: 'none' };
    const quarantined = [...worlds.quarantine].map(([id, reason]) => ({ id, reason }));
    const memory = { voxels: 0, chunks: 0, keyframes: 0, bytes: 0 };
    for (const world of worlds.all()) {
      const s = world.memory.stats();
      memory.voxels += s.voxels;
      memory.chunks += s.chunks;
      memory.keyframes += s.keyframes;
      memory.bytes += s.bytes;
    }
    const mem = process.memoryUsage();
    return {
      ok: store.ok && quarantined.length === 0,
      store,
      worlds: worlds.size,
      players: sessions.size,
      quarantined,
      memory,
      cluster: directory && {
        node: directory.node,
        ownedWorlds: directory.owned().length,
        leaseMs: directory.leaseMs,
        leaseHeadroomMs: Math.round(Math.min(directory.leaseHeadroomMs(), directory.leaseMs)),
      },
      process: {
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        external: mem.external,
        arrayBuffers: mem.arrayBuffers,
      },
    };
  };
  const io = new Server<ClientToServerEvents, ServerToClientEvents, NodeEvents>(http, {
    ...(o.adapter ? { adapter: o.adapter } : {}),
    transports: ['websocket'],
    // engine.io closes a connection whose message is larger than this: the documented limit, plus
    // room for socket.io's framing of one event.
    maxHttpBufferSize: MAX_CLIENT_MESSAGE_BYTES + 1024,
    serveClient: false,
  });
  let nextPlayer = 1;
  /** Tells everyone in `world` that someone joined or left, as a player or a spectator of `playerId`. */
  const announce = (
    world: World,
    kind: 'joined' | 'left',
    name: string,
    playerId: string,
    role: 'player' | 'spectator',
  ): void => {
    io.to(room(world)).emit('announce', { kind, name, playerId, role });
  };
  o.workers?.attach(http);

  /** This node's public worlds with players (private ones are not listed). */
  const localWorlds = (): WorldListing[] =>
    [...worlds.all()]
      .filter((w) => w.inviteToken === undefined && w.playerCount > 0)
      .map((w) => ({
        worldId: w.id,
        prompt: w.prompt.slice(0, WORLD_LIST_PROMPT_CHARS),
        players: w.playerCount,
        ...(directory ? { node: directory.node.url } : {}),
      }));
  io.on('spatia:worlds', (ack) => ack(localWorlds()));
  /** Every node's public worlds (clustered: asked through the control bus; a node that does not answer is left out). */
  const listWorlds = async (): Promise<WorldList> => {
    const mine = localWorlds();
    if (!o.adapter) return { worlds: mine };
    // The adapter waits for the nodes whose heartbeat it hears, 5 s at most, then answers with what came.
    const theirs = await new Promise<{ replies: WorldListing[][]; partial: boolean }>((resolve) =>
      io.serverSideEmit('spatia:worlds', (err: Error | null, replies: WorldListing[][]) =>
        resolve({ replies: replies ?? [], partial: err !== null }),
      ),
    );
    const all = [...mine, ...theirs.replies.flat()].sort((a, b) => b.players - a.players);
    return theirs.partial ? { worlds: all, partial: true } : { worlds: all };
  };

  io.on('connection', (socket: GameSocket) => {
    let greeted = false;
    /** A clustered join waiting for the directory's answer. */
    let joining = false;
    let player: PlayerSession | undefined;
    let watching: { target: PlayerSession; stop: () => void; name: string } | undefined;
    const errorLimiter = new RateLimiter(ERRORS_PER_SECOND, 2 * ERRORS_PER_SECOND, performance.now());
    const inputLimiter = new RateLimiter(MAX_INPUTS_PER_SECOND, MAX_INPUTS_PER_SECOND, performance.now());
    const promptLimiter = perMinute(limits.promptsPerMinute);
    const worldLimiter = perMinute(limits.worldsPerMinute);
    const listLimiter = perMinute(WORLD_LISTS_PER_MINUTE);
    // Brush strokes and undo come in quick runs: bursts of up to 10.
    const editLimiter = new RateLimiter(
      limits.editsPerMinute / 60,
      Math.min(limits.editsPerMinute, 10),
      performance.now(),
    );
    const fail = (code: ErrorCode, message: string, event?: string): void => {
      if (errorLimiter.take(performance.now())) socket.emit('error', { code, message, event });
    };
    const replyError = (ack: unknown, code: ErrorCode, message: string, event: string): void => {
      if (typeof ack === 'function') ack({ ok: false, error: { code, message, event } });
      else fail(code, message, event);
    };
    const sendFrame: SendFrame = (bytes, onAck) => {
      metrics.frameSent();
      socket.timeout(ackTimeoutMs).emit('frame', bytes, (err: Error | null) => onAck(!err));
    };
    const dropUnresponsive = (): void => {
      log.warn({ socket: socket.id }, 'viewer acknowledged no frame for too long: disconnected');
      socket.disconnect(true);
    };
    /**
     * A handler that throws answers INTERNAL (details only in the log) instead of taking the
     * process, and with it every other player, down.
     */
    const guard =
      <A extends unknown[]>(event: string, handler: (...args: A) => void) =>
      (...args: A): void => {
        try {
          handler(...args);
        } catch (e) {
          log.error({ err: e, event, socket: socket.id }, 'socket handler failed');
          replyError(args.at(-1), 'INTERNAL', `the server could not handle "${event}" (logged)`, event);
        }
      };

    socket.on(
      'hello',
      guard('hello', (hello: unknown, ack: unknown) => {
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
              nodes: directory?.liveNodes(),
            },
          });
      }),
    );

    socket.on(
      'join',
      guard('join', (join: unknown, ack: unknown) => {
        if (tooLarge(join)) return replyError(ack, 'TOO_LARGE', 'join is too large', 'join');
        if (!greeted) return replyError(ack, 'NOT_JOINED', 'say hello (protocol version) first', 'join');
        if (player || watching || joining)
          return replyError(ack, 'ALREADY_JOINED', 'already in a world', 'join');
        const v = validate(joinSchema, join);
        if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `join: ${v.reason}`, 'join');
        const j = v.value;
        if (!directory) return enterWorld(j, ack);
        // Clustered: only the node holding the world's lease serves it.
        joining = true;
        directory.claim(j.worldId).then(
          (claim) => {
            joining = false;
            if (!socket.connected) return;
            if (!claim.mine) {
              const error: ServerError = {
                code: 'WORLD_ELSEWHERE',
                message: `world "${j.worldId}" is served by another node: join it at ${claim.owner.url}`,
                event: 'join',
                node: claim.owner.url,
                retryAfterMs: claim.leaseMs,
              };
              if (typeof ack === 'function') ack({ ok: false, error });
              return;
            }
            worlds.setLeaseEpoch(j.worldId, claim.epoch);
            guard('join', enterWorld)(j, ack);
            // A lease taken for a join that failed is given back at once.
            if (!worlds.get(j.worldId)) void directory.release(j.worldId);
          },
          (e: unknown) => {
            joining = false;
            log.warn({ err: (e as Error).message, world: j.worldId }, 'world directory did not answer');
            replyError(ack, 'WORLD_UNAVAILABLE', 'the cluster directory did not answer: try again', 'join');
          },
        );
      }),
    );

    /** Joins a validated request to its world (on this node) as a player or spectator. */
    const enterWorld = (j: JoinRequest, ack: unknown) => {
      const reply = (value: Joined): void => {
        if (typeof ack === 'function') ack({ ok: true, value });
      };
      const looked = worlds.lookup(j.worldId);
      if (!looked.ok) return replyError(ack, looked.code, looked.message, 'join');
      const existing = looked.world;
      // Private worlds: nothing of the world is sent (not even whether it has players) without the token.
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
        const channel = target.watch({
          sendFrame,
          onUnresponsive: dropUnresponsive,
          onPlayerLeft: () => {
            if (watching?.target !== target) return;
            watching = undefined;
            void socket.leave(room(existing));
            fail('NOT_FOUND', `${target.name} left: join again to play or watch someone else`, 'join');
          },
        });
        watching = { target, stop: () => target.unwatch(channel), name: j.name };
        void socket.join(room(existing));
        announce(existing, 'joined', j.name, target.id, 'spectator');
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
      if (existing && existing.playerCount >= limits.playersPerWorld)
        return replyError(
          ack,
          'WORLD_FULL',
          `world "${existing.id}" is full (${limits.playersPerWorld} players): try again later or watch someone`,
          'join',
        );
      let world = existing;
      let tokens: { invite?: string; owner: string } | undefined;
      if (!world) {
        if (j.private && isBundledScene(j.worldId))
          return replyError(ack, 'FORBIDDEN', `"${j.worldId}" is a bundled world: it stays public`, 'join');
        if (!worldLimiter.take(performance.now()))
          return replyError(
            ack,
            'RATE_LIMITED',
            `more than ${limits.worldsPerMinute} new worlds a minute from this connection`,
            'join',
          );
        // Its creator may lock editing (any world) and rotate the invite (private ones).
        tokens = { invite: j.private ? newToken() : undefined, owner: newToken() };
        const made = worlds.create(j.worldId, j.prompt, j.seed, tokens);
        if (!made.ok) return replyError(ack, made.code, made.message, 'join');
        world = made.world;
      }
      let session: PlayerSession;
      try {
        session = new PlayerSession(
          world,
          nextPlayer++,
          j.name,
          settings,
          {
            sendFrame,
            onError: (e) => socket.emit('error', e),
            onUnresponsive: dropUnresponsive,
            sendMirror: (bytes) => {
              const wire = deflateRawSync(bytes, { level: MIRROR_DEFLATE_LEVEL });
              socket.emit('mirror', wire);
              return wire.length;
            },
          },
          j.record === true,
        );
      } catch (e) {
        log.error({ err: e, world: world.id }, 'player session could not start');
        const what = j.record
          ? 'the recording could not start (the server logged why)'
          : 'the session could not start';
        return replyError(ack, 'INTERNAL', `${what}: try again, or join without recording`, 'join');
      }
      const others = world.players.map((m) => m.name);
      player = session;
      sessions.add(session);
      session.start();
      void socket.join(room(world));
      announce(world, 'joined', j.name, session.id, 'player');
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
        ownerToken: tokens?.owner,
        sessionId: session.recordingId,
      });
    };

    socket.on(
      'input',
      guard('input', (input: unknown) => {
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
      }),
    );

    socket.on(
      'prompt',
      guard('prompt', (p: unknown) => {
        if (tooLarge(p)) return fail('TOO_LARGE', 'prompt is too large', 'prompt');
        if (!player) return fail('NOT_JOINED', 'join a world before prompting', 'prompt');
        if (!promptLimiter.take(performance.now()))
          return fail('RATE_LIMITED', `more than ${limits.promptsPerMinute} prompts a minute`, 'prompt');
        const v = validate(promptSchema, p);
        if (!v.ok) return fail('BAD_MESSAGE', `prompt: ${v.reason}`, 'prompt');
        player.world.prompt = v.value.prompt;
        log.info(
          {
            world: player.world.id,
            prompt: v.value.prompt.slice(0, LOGGED_PROMPT_CHARS),
            promptLength: v.value.prompt.length,
          },
          'prompt changed',
        );
      }),
    );

    socket.on(
      'listWorlds',
      guard('listWorlds', (ack: unknown) => {
        if (!greeted)
          return replyError(ack, 'NOT_JOINED', 'say hello (protocol version) first', 'listWorlds');
        if (!listLimiter.take(performance.now()))
          return replyError(
            ack,
            'RATE_LIMITED',
            `at most ${WORLD_LISTS_PER_MINUTE} world lists a minute`,
            'listWorlds',
          );
        void listWorlds().then(
          (value) => {
            if (typeof ack === 'function') ack({ ok: true, value });
          },
          (e: Error) => {
            log.error({ err: e }, 'world list failed');
            replyError(ack, 'INTERNAL', 'the world list could not be made (logged)', 'listWorlds');
          },
        );
      }),
    );

    socket.on(
      'rotateInvite',
      guard('rotateInvite', (r: unknown, ack: unknown) => {
        if (tooLarge(r)) return replyError(ack, 'TOO_LARGE', 'rotateInvite is too large', 'rotateInvite');
        if (!player) return replyError(ack, 'NOT_JOINED', 'join your private world first', 'rotateInvite');
        const v = validate(rotateInviteSchema, r);
        if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `rotateInvite: ${v.reason}`, 'rotateInvite');
        const world = player.world;
        if (world.inviteToken === undefined || !world.isOwner(v.value.ownerToken))
          return replyError(
            ack,
            'FORBIDDEN',
            'only the creator of a private world rotates its invite',
            'rotateInvite',
          );
        const inviteToken = newToken();
        world.rotateInvite(inviteToken);
        log.info({ world: world.id }, 'invite token rotated');
        if (typeof ack === 'function') ack({ ok: true, value: { inviteToken } });
      }),
    );

    socket.on(
      'mirrorAck',
      guard('mirrorAck', (a: unknown) => {
        if (tooLarge(a)) return fail('TOO_LARGE', 'mirrorAck is too large', 'mirrorAck');
        if (!player) return fail('NOT_JOINED', 'join a world as a player first', 'mirrorAck');
        const v = validate(mirrorAckSchema, a);
        if (!v.ok) return fail('BAD_MESSAGE', `mirrorAck: ${v.reason}`, 'mirrorAck');
        const refused = player.acknowledgeMirror(v.value);
        if (refused) fail('BAD_MESSAGE', `mirrorAck: ${refused}`, 'mirrorAck');
      }),
    );

    /**
     * Who may edit now: a player (not a spectator: in a private world every player came with the
     * invite token) of a world whose creator has not locked editing. An error reason, or the player.
     */
    const editor = (event: string, ack: unknown): PlayerSession | undefined => {
      if (!editLimiter.take(performance.now())) {
        replyError(ack, 'RATE_LIMITED', `more than ${limits.editsPerMinute} edits a minute`, event);
        return undefined;
      }
      if (!player) {
        replyError(
          ack,
          watching ? 'FORBIDDEN' : 'NOT_JOINED',
          watching ? 'spectators watch: they do not edit' : 'join a world as a player to edit it',
          event,
        );
        return undefined;
      }
      if (player.world.editLocked) {
        replyError(ack, 'FORBIDDEN', `the creator of world "${player.world.id}" locked editing`, event);
        return undefined;
      }
      return player;
    };
    /** Answers the editor and tells every player of the world (their mirrors get the chunks next). */
    const editReply = (world: World, ack: unknown, e: EditEvent | undefined): void => {
      if (e)
        io.to(room(world)).emit('edited', {
          action: e.action,
          author: e.entry.author,
          authorId: e.entry.authorId,
          op: e.entry.op,
          seq: e.entry.seq,
          voxels: e.voxels,
          bounds: e.entry.bounds,
        });
      if (typeof ack !== 'function') return;
      ack({
        ok: true,
        value: e ? { seq: e.entry.seq, voxels: e.voxels, bounds: e.entry.bounds } : null,
      });
    };

    socket.on(
      'edit',
      guard('edit', (op: unknown, ack: unknown) => {
        if (tooLarge(op)) return replyError(ack, 'TOO_LARGE', 'edit is too large', 'edit');
        const p = editor('edit', ack);
        if (!p) return;
        const v = validate(editOpSchema, op);
        if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `edit: ${v.reason}`, 'edit');
        let e: EditEvent;
        try {
          e = p.world.edit(v.value, { id: p.id, name: p.name });
        } catch (err) {
          if (err instanceof SpatiaError && err.code === 'CAPACITY')
            return replyError(ack, 'TOO_LARGE', `edit: ${err.message}`, 'edit');
          throw err;
        }
        log.info(
          { world: p.world.id, player: p.id, op: v.value.op, seq: e.entry.seq, voxels: e.voxels },
          'memory edited',
        );
        editReply(p.world, ack, e);
      }),
    );

    socket.on(
      'editHistory',
      guard('editHistory', (h: unknown, ack: unknown) => {
        if (tooLarge(h)) return replyError(ack, 'TOO_LARGE', 'editHistory is too large', 'editHistory');
        const p = editor('editHistory', ack);
        if (!p) return;
        const v = validate(editHistorySchema, h);
        if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `editHistory: ${v.reason}`, 'editHistory');
        const e = v.value.action === 'undo' ? p.world.undo(p.id) : p.world.redo(p.id);
        editReply(p.world, ack, e);
      }),
    );

    socket.on(
      'lockEditing',
      guard('lockEditing', (l: unknown, ack: unknown) => {
        if (tooLarge(l)) return replyError(ack, 'TOO_LARGE', 'lockEditing is too large', 'lockEditing');
        if (!player) return replyError(ack, 'NOT_JOINED', 'join your world first', 'lockEditing');
        const v = validate(lockEditingSchema, l);
        if (!v.ok) return replyError(ack, 'BAD_MESSAGE', `lockEditing: ${v.reason}`, 'lockEditing');
        const world = player.world;
        if (!world.isOwner(v.value.ownerToken))
          return replyError(ack, 'FORBIDDEN', 'only the creator of a world locks its editing', 'lockEditing');
        world.lockEditing(v.value.locked);
        log.info({ world: world.id, locked: v.value.locked }, 'editing lock changed');
        if (typeof ack === 'function') ack({ ok: true, value: { locked: v.value.locked } });
      }),
    );

    const leave = (): void => {
      if (watching) {
        const w = watching;
        w.stop();
        announce(w.target.world, 'left', w.name, w.target.id, 'spectator');
        void socket.leave(room(w.target.world));
        watching = undefined;
      }
      if (!player) return;
      const p = player;
      p.leave();
      sessions.delete(p);
      void socket.leave(room(p.world));
      announce(p.world, 'left', p.name, p.id, 'player');
      log.info({ player: p.id, frames: p.frames, dropped: p.dropped }, 'player left');
      player = undefined;
    };
    socket.on('leave', guard('leave', leave));
    socket.on('disconnect', guard('disconnect', leave));
  });

  let tick = 0;
  const statsTimer = setInterval(() => {
    tick++;
    for (const world of new Set([...sessions].map((s) => s.world)))
      try {
        io.to(room(world)).emit('stats', world.stats(tick % MAP_EVERY_TICKS === 1));
      } catch (e) {
        log.error({ err: e, world: world.id }, 'world stats failed');
      }
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
    pauseGeneration: (paused) => {
      settings.generation.paused = paused;
    },
    close: async () => {
      clearInterval(statsTimer);
      for (const s of sessions) s.leave();
      worlds.dispose();
      await o.workers?.dispose();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

/**
 * Clustered: a world that left RAM is given up once the store holds its last commit (the next
 * owner loads it from there), unless someone brought it back meanwhile.
 */
function releaseWhenStored(
  id: string,
  directory: WorldDirectory | undefined,
  worlds: WorldRegistry,
  store: WorldStore | undefined,
  log: Logger,
): void {
  if (!directory) return;
  void (store?.flush() ?? Promise.resolve()).then(
    () => {
      if (!worlds.get(id)) void directory.release(id);
    },
    (e: unknown) =>
      log.error({ err: e, world: id }, 'store flush failed: the lease is given back after a lease'),
  );
}

/**
 * Clustered: the directory renews leases only for worlds this node holds; a world whose lease was
 * lost, or whose commit the store fenced off (a newer lease committed it), is dropped unwritten
 * and `sendAway` tells its players.
 */
function followLeases(
  directory: WorldDirectory,
  worlds: WorldRegistry,
  store: WorldStore | undefined,
  sendAway: (lost: World) => void,
): void {
  directory.serving = (id) => worlds.get(id) !== undefined;
  directory.onLost = (id) => {
    const lost = worlds.drop(id);
    if (lost) sendAway(lost);
  };
  if (store) store.onFenced = (id) => directory.onLost(id, 'a node with a newer lease committed it');
}

/** Where the health report is served (JSON; 200 when healthy, 503 when degraded). */
const HEALTH_PATH = '/healthz';
/** Where Prometheus scrapes the node's metrics (text format). */
const METRICS_PATH = '/metrics';

interface Health {
  readonly ok: boolean;
  readonly store: StoreHealth | { readonly ok: true; readonly kind: 'none' };
  readonly worlds: number;
  readonly players: number;
  readonly quarantined: readonly { id: string; reason: string }[];
  /** Totals over the loaded worlds' spatial memories (voxel grid bytes, keyframes in memory). */
  readonly memory: { voxels: number; chunks: number; keyframes: number; bytes: number };
  /**
   * Clustered mode: this node, the worlds it holds leases on, and how long until the least recently
   * confirmed lease would be given up unrenewed (the lease's length when none is held).
   */
  readonly cluster:
    | { node: { id: string; url: string }; ownedWorlds: number; leaseMs: number; leaseHeadroomMs: number }
    | undefined;
  /** The process's memory in bytes (Node's process.memoryUsage()). */
  readonly process: {
    rss: number;
    heapUsed: number;
    heapTotal: number;
    external: number;
    arrayBuffers: number;
  };
}

function sendHealth(res: ServerResponse, h: Health): void {
  res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(h));
}

/** A token bucket of `n` a minute, bursts of up to a few. */
const perMinute = (n: number): RateLimiter => {
  const burst = Math.max(1, Math.min(n, 5));
  return new RateLimiter(n / 60, burst, performance.now());
};

/** An unguessable token (144 bits), URL-safe. */
const newToken = (): string => randomBytes(18).toString('base64url');

const isBundledScene = (id: string): boolean => (BUNDLED_SCENES as readonly string[]).includes(id);

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
