import { type Logger, pino } from 'pino';
import type { ServerLimits } from '../../server/limits.ts';
import { ProceduralModel } from '../../server/models/procedural/proceduralModel.ts';
import type { WorldModel } from '../../server/models/worldModel.ts';
import { type RunningServer, startGameServer } from '../../server/net/gameServer.ts';
import type { WorldStore } from '../../server/store/worldStore.ts';

/** The real game server on a free loopback port, quiet, with the procedural model unless `model` is given. */
export function startTestServer(
  opts: {
    clientDir?: string;
    width?: number;
    height?: number;
    store?: WorldStore;
    clipFrames?: number;
    entities?: boolean;
    limits?: Partial<ServerLimits>;
    frameAckTimeoutMs?: number;
    logger?: Logger;
    model?: WorldModel;
    voxelSizeM?: number;
  } = {},
): Promise<RunningServer> {
  return startGameServer({
    port: 0,
    host: '127.0.0.1',
    model:
      opts.model ?? new ProceduralModel({ width: opts.width, height: opts.height, entities: opts.entities }),
    voxelSizeM: opts.voxelSizeM ?? 0.02,
    clipFrames: opts.clipFrames ?? 1,
    jpegQuality: 85,
    queueFrames: 2,
    clientDir: opts.clientDir,
    store: opts.store,
    commitIntervalMs: 300,
    logger: opts.logger ?? pino({ level: 'silent' }),
    limits: opts.limits,
    frameAckTimeoutMs: opts.frameAckTimeoutMs,
  });
}
