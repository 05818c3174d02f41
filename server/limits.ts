/**
 * The budgets that protect the server from one world, client or player taking it over. Each has
 * a flag (server/config.ts) and a line in docs/operations.md.
 */
export interface ServerLimits {
  /** Players in one world at once; the next one is told WORLD_FULL. */
  readonly playersPerWorld: number;
  /** Worlds held in RAM at once; idle ones are unloaded to make room, else SERVER_BUSY. */
  readonly loadedWorlds: number;
  /** A world nobody has played for this long leaves RAM (committed first), seconds. */
  readonly worldIdleS: number;
  /** New worlds one connection may create per minute. */
  readonly worldsPerMinute: number;
  /** Prompt changes one connection may send per minute. */
  readonly promptsPerMinute: number;
  /** Edits, undos and redos one connection may send per minute. */
  readonly editsPerMinute: number;
  /** A viewer that acknowledges no frame for this long is disconnected, milliseconds. */
  readonly unresponsiveMs: number;
  /** Memory mirror bandwidth per player, kbit/s (0: no mirror); frames come on top. */
  readonly mirrorKbps: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  playersPerWorld: 8,
  loadedWorlds: 32,
  worldIdleS: 120,
  worldsPerMinute: 10,
  promptsPerMinute: 20,
  editsPerMinute: 240,
  unresponsiveMs: 15_000,
  mirrorKbps: 4000,
};
