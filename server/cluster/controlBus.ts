import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { SpatiaError } from '../../shared/errors.ts';

/**
 * The cluster's control fan-out: socket.io's Redis streams adapter on the nodes' socket.io
 * servers, so a node can ask the others (`serverSideEmit` with acknowledgements) and broadcasts
 * reach every node's sockets. Only control messages travel here (the cluster's world list); frames
 * go from a world's node straight to its players.
 */
export interface ControlBus {
  /** The adapter factory for `new Server(…, { adapter })`. */
  readonly adapter: ReturnType<typeof createAdapter>;
  close(): Promise<void>;
}

/** Stream the nodes share (one per cluster prefix). */
const STREAM = 'spatia:control';

export async function openControlBus(
  url: string,
  log: { warn: (o: object, msg: string) => void },
): Promise<ControlBus> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  redis.on('error', (e: Error) => log.warn({ err: e.message }, 'redis connection error (control bus)'));
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new SpatiaError('CLUSTER', `cannot reach Redis at ${url}: ${(e as Error).message}`);
  }
  return {
    // Heartbeats tell each node which others are alive (a request waits only for those).
    adapter: createAdapter(redis, {
      streamName: STREAM,
      maxLen: 1000,
      blockTimeInMs: 1000,
      heartbeatInterval: 2000,
      heartbeatTimeout: 5000,
    }),
    close: async () => {
      redis.disconnect();
    },
  };
}
