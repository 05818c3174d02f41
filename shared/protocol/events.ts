import { z } from 'zod';
import type { Bounds, EditOp, LoggedEditOp } from '../edit/editOps.ts';

/**
 * The one typed event contract between the Babylon client and the server (socket.io, websocket
 * transport). Client → server payloads are validated at runtime on the server with these zod
 * schemas; server → client frames are binary (see frameCodec.ts).
 */
export const PROTOCOL_VERSION = 1;

/** Largest client message the server accepts (socket.io's maxHttpBufferSize is set to this). */
export const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;
/** Longest prompt, in characters (the world model's contract takes the same). */
export const MAX_PROMPT_LENGTH = 2000;
/** Input messages a player may send per second before the excess is refused (display rates ≤ 240 Hz). */
export const MAX_INPUTS_PER_SECOND = 250;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const axis = finite.refine((v) => Math.abs(v) <= 1, 'must be within [-1, 1]');

export const helloSchema = z.strictObject({ protocol: z.number().int(), client: z.string().max(64) });
type Hello = z.infer<typeof helloSchema>;

export const joinSchema = z.strictObject({
  /** A world id: letters, digits, dash, underscore. Bundled scenes (`room`, …) seed ground-truth worlds. */
  worldId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, - or _'),
  name: z.string().trim().min(1).max(32),
  /** Creates the world with this prompt when it does not exist yet. */
  prompt: z.string().max(MAX_PROMPT_LENGTH).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  /** Create the world private: joining or watching it then needs the invite token returned here. */
  private: z.boolean().optional(),
  inviteToken: z.string().max(100).optional(),
  /** Watch this player (by name or id) instead of playing. */
  spectate: z.string().min(1).max(32).optional(),
  /** Record this play session (event log + frames) for export and replay. */
  record: z.boolean().optional(),
});
export type JoinRequest = z.infer<typeof joinSchema>;

export const inputSchema = z.strictObject({
  seq: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31),
  /** Client clock (performance.now() ms), echoed in frames for latency. */
  clientTimeMs: finite,
  /** Time this input was held, ms; the controller clamps each step to its `maxStepS`. */
  dtMs: finite.refine((v) => v >= 0 && v <= 1000, 'must be within [0, 1000] ms'),
  keys: z.number().int().min(0).max(0xff),
  lookDxPx: finite.refine((v) => Math.abs(v) <= 4000, 'must be within ±4000 px'),
  lookDyPx: finite.refine((v) => Math.abs(v) <= 4000, 'must be within ±4000 px'),
  padMoveX: axis,
  padMoveY: axis,
  padLookX: axis,
  padLookY: axis,
});
export type InputMessage = z.infer<typeof inputSchema>;

export const promptSchema = z.strictObject({ prompt: z.string().trim().min(1).max(MAX_PROMPT_LENGTH) });

/** Chunks the client may name as dropped in one mirror acknowledgement. */
export const MAX_MIRROR_EVICTIONS = 512;
const chunkCoord = z.number().int().min(-65536).max(65536);

/**
 * The client took mirror batch `seq` in (the server sends the next only then; absent: this only
 * reports evictions), and dropped these chunks since its last report (the server sends them again
 * when the player comes back).
 */
export const mirrorAckSchema = z.strictObject({
  seq: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
  evicted: z.array(z.tuple([chunkCoord, chunkCoord, chunkCoord])).max(MAX_MIRROR_EVICTIONS),
});
export type MirrorAck = z.infer<typeof mirrorAckSchema>;

/** Undo or redo the sender's latest edit. */
export const editHistorySchema = z.strictObject({ action: z.enum(['undo', 'redo']) });

/** The world's creator locks (or unlocks) editing for everyone. */
export const lockEditingSchema = z.strictObject({
  ownerToken: z.string().min(1).max(100),
  locked: z.boolean(),
});

/** What an edit, undo or redo did. */
export interface EditResult {
  /** The log entry's number in the world. */
  readonly seq: number;
  readonly voxels: number;
  readonly bounds: Bounds;
}

/** To every player of a world: its memory was edited (the changed chunks follow in the mirror). */
export interface Edited extends EditResult {
  readonly action: 'apply' | 'undo' | 'redo';
  readonly author: string;
  /** The author's player id (names need not be unique). */
  readonly authorId: string;
  readonly op: LoggedEditOp;
}

/** The creator of a private world replaces its invite token (the old one stops admitting anyone). */
export const rotateInviteSchema = z.strictObject({ ownerToken: z.string().min(1).max(100) });

export interface Welcome {
  readonly protocol: number;
  readonly server: string;
  readonly model: { name: string; width: number; height: number; fps: number; device: string };
  /** Clustered servers: the URLs of the live nodes, to reconnect to when this one goes away. */
  readonly nodes?: readonly string[];
}

export interface Joined {
  readonly worldId: string;
  readonly playerId: string;
  readonly role: 'player' | 'spectator';
  /** Present for a private world: what others need to join it. */
  readonly inviteToken?: string;
  /**
   * Only to the creator of a new world: proves it to `rotateInvite` (private worlds) and
   * `lockEditing` (the server keeps only a hash).
   */
  readonly ownerToken?: string;
  /** Present when the session is being recorded. */
  readonly sessionId?: string;
  /** Players already in the world. */
  readonly others: readonly string[];
  readonly prompt: string;
  /** The camera the player starts with (the client predicts from it). */
  readonly spawn: { position: [number, number, number]; yaw: number; pitch: number };
  readonly intrinsics: { fx: number; fy: number; cx: number; cy: number; width: number; height: number };
}

/** A public world being played now, as the world list shows it. */
export interface WorldListing {
  readonly worldId: string;
  /** Its prompt's beginning (at most WORLD_LIST_PROMPT_CHARS characters). */
  readonly prompt: string;
  readonly players: number;
  /** Clustered servers: the node that serves it (join there). */
  readonly node?: string;
}

export interface WorldList {
  /** Most players first. */
  readonly worlds: readonly WorldListing[];
  /** Clustered servers: some nodes did not answer in time, and their worlds are missing. */
  readonly partial?: boolean;
}

/** How much of a world's prompt the world list carries. */
export const WORLD_LIST_PROMPT_CHARS = 120;

export interface WorldStats {
  readonly worldId: string;
  readonly voxels: number;
  readonly keyframes: number;
  readonly memoryBytes: number;
  readonly players: number;
  /** Top-down map of the memory: PNG bytes, and the world rectangle it covers. */
  readonly map?: { png: Uint8Array; minX: number; minZ: number; pxPerM: number };
}

export type ErrorCode =
  | 'BAD_MESSAGE'
  | 'TOO_LARGE'
  | 'RATE_LIMITED'
  | 'VERSION_MISMATCH'
  | 'NOT_JOINED'
  | 'ALREADY_JOINED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'WORLD_FULL'
  | 'WORLD_UNAVAILABLE'
  | 'WORLD_ELSEWHERE'
  | 'SERVER_BUSY'
  | 'RECORDING_STOPPED'
  | 'INTERNAL';

export interface ServerError {
  readonly code: ErrorCode;
  readonly message: string;
  /** The event that caused it. */
  readonly event?: string;
  /**
   * WORLD_ELSEWHERE (clustered servers): the URL of the node that serves the world; join there. If
   * it does not answer, join again on any node after `retryAfterMs` (its lease runs out by then).
   */
  readonly node?: string;
  readonly retryAfterMs?: number;
}

type Ack<T> = (reply: { ok: true; value: T } | { ok: false; error: ServerError }) => void;

export interface ClientToServerEvents {
  hello: (hello: Hello, ack: Ack<Welcome>) => void;
  join: (join: JoinRequest, ack: Ack<Joined>) => void;
  input: (input: InputMessage) => void;
  prompt: (p: { prompt: string }) => void;
  rotateInvite: (r: { ownerToken: string }, ack: Ack<{ inviteToken: string }>) => void;
  mirrorAck: (a: MirrorAck) => void;
  /** Edits the world's memory (an `EditOp`, see shared/edit/editOps.ts). */
  edit: (op: EditOp, ack: Ack<EditResult>) => void;
  /** Undoes or redoes the sender's latest edit; null when there is none. */
  editHistory: (h: { action: 'undo' | 'redo' }, ack: Ack<EditResult | null>) => void;
  lockEditing: (l: { ownerToken: string; locked: boolean }, ack: Ack<{ locked: boolean }>) => void;
  leave: () => void;
  /** The public worlds being played now, on this server or (clustered) on every node. */
  listWorlds: (ack: Ack<WorldList>) => void;
}

export interface ServerToClientEvents {
  /** One encoded frame (frameCodec.ts). */
  frame: (bytes: Uint8Array, ack: () => void) => void;
  /** One batch of memory chunks around the player (mirrorCodec.ts); answered by `mirrorAck`. */
  mirror: (bytes: Uint8Array) => void;
  stats: (stats: WorldStats) => void;
  edited: (e: Edited) => void;
  /** Someone joined or left the world. */
  announce: (a: {
    kind: 'joined' | 'left';
    name: string;
    playerId: string;
    role: 'player' | 'spectator';
  }) => void;
  error: (err: ServerError) => void;
}

/** Validates `value` with `schema`; on failure a readable one-line reason. */
export function validate<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; reason: string } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  return {
    ok: false,
    reason: r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; '),
  };
}
