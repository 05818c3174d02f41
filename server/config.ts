import { parseArgs } from 'node:util';
import { z } from 'zod';
import { SpatiaError } from '../shared/errors.ts';
import { DEFAULT_LEASE_MS, isRedisUrl } from './cluster/worldDirectory.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { DEFAULT_VOXEL_SIZE_M, validateVoxelSize } from './memory/voxelGrid.ts';
import { MODEL_NAMES } from './models/registry.ts';
import { MODEL_DEFAULTS } from './models/worldModel.ts';
import { isDatabaseUrl, isPostgresUrl, withoutPassword } from './store/postgres/postgresUrl.ts';
import { DEFAULT_KEYFRAME_RAM_BYTES, DEFAULT_RECORDING_CAP_BYTES } from './store/worldStore.ts';

/** Server configuration: flags win over environment variables (SPATIA_*), which win over defaults. */
const serverConfigSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1).max(255),
  model: z.enum(MODEL_NAMES),
  voxel: z.coerce.number().refine((v) => {
    try {
      validateVoxelSize(v);
      return true;
    } catch {
      return false;
    }
  }, 'must be a voxel size in metres within the supported range'),
  clipFrames: z.coerce.number().int().min(1).max(16),
  jpegQuality: z.coerce.number().int().min(30).max(95),
  queueFrames: z.coerce.number().int().min(1).max(16),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']),
  scene: z.string().optional(),
  store: z
    .string()
    .min(1)
    .max(4096)
    .refine(
      (v) => !isPostgresUrl(v) || isDatabaseUrl(v),
      'a PostgreSQL store must be postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE',
    ),
  workerToken: z.string().max(200).optional(),
  onnxModel: z.string().max(4096).optional(),
  threads: z
    .string()
    .refine((v) => v === 'auto' || (/^\d{1,2}$/.test(v) && Number(v) <= 64), 'must be auto or 0..64 threads')
    .transform((v) => (v === 'auto' ? ('auto' as const) : Number(v))),
  viewThreads: z.coerce.number().int().min(0).max(64),
  stallMs: z.coerce.number().int().min(100).max(600_000),
  size: z
    .string()
    .regex(/^\d{2,4}x\d{2,4}$/, 'must be WIDTHxHEIGHT, e.g. 512x288')
    .transform((s) => s.split('x').map(Number) as [number, number])
    .refine(
      ([w, h]) => w % 8 === 0 && h % 8 === 0 && w <= 2048 && h <= 2048,
      'width and height must be multiples of 8, at most 2048',
    )
    .optional(),
  playersPerWorld: z.coerce.number().int().min(1).max(256),
  loadedWorlds: z.coerce.number().int().min(1).max(10_000),
  worldIdleS: z.coerce.number().min(1).max(86_400),
  worldsPerMinute: z.coerce.number().int().min(1).max(10_000),
  promptsPerMinute: z.coerce.number().int().min(1).max(10_000),
  editsPerMinute: z.coerce.number().int().min(1).max(10_000),
  unresponsiveMs: z.coerce.number().int().min(500).max(600_000),
  mirrorKbps: z.coerce.number().int().min(0).max(1_000_000),
  keyframeRamMib: z.coerce.number().min(0).max(1_000_000),
  recordingCapMib: z.coerce.number().min(1).max(1_000_000),
  redis: z.string().max(2048).refine(isRedisUrl, 'must be a redis:// or rediss:// URL').optional(),
  nodeUrl: z
    .string()
    .max(2048)
    .regex(/^https?:\/\/[^\s/]+\/?$/, 'must be an http(s)://HOST:PORT/ URL')
    .optional(),
  leaseMs: z.coerce.number().int().min(500).max(600_000),
});
export type ServerConfig = z.infer<typeof serverConfigSchema>;

export const SERVER_USAGE = `usage: npm start -- [--port N] [--host ADDR] [--model ${MODEL_NAMES.join('|')}] [--scene NAME|FILE]
                 [--voxel METRES] [--clip-frames N] [--jpeg-quality Q] [--queue N] [--log-level L]
                 [--store FILE.sqlite|postgres://…/DB|none] [--worker-token T] [--stall-ms N] [--onnx-model FILE.onnx]
                 [--threads N|auto] [--view-threads N] [--size WxH] [--players-per-world N] [--loaded-worlds N]
                 [--world-idle-s S] [--worlds-per-minute N] [--prompts-per-minute N] [--edits-per-minute N] [--unresponsive-ms MS]
                 [--mirror-kbps N] [--keyframe-ram-mib N] [--recording-cap-mib N]
                 [--redis URL [--node-url URL] [--lease-ms MS]]

Serves the Babylon.js client and the socket.io endpoint on one port and prints the URL.
Environment: SPATIA_PORT, SPATIA_HOST, SPATIA_MODEL, SPATIA_VOXEL, SPATIA_CLIP_FRAMES,
SPATIA_JPEG_QUALITY, SPATIA_QUEUE, SPATIA_LOG_LEVEL, SPATIA_STORE, SPATIA_SIZE (flags win).
Defaults: port 8080, host 127.0.0.1, model procedural, voxel ${DEFAULT_VOXEL_SIZE_M}, 1 frame per clip (lowest latency),
JPEG quality 80, 2 queued frames per player, log level info, worlds stored in data/spatia.sqlite
(SQLite, WAL; a postgres:// URL keeps them in that PostgreSQL database; \`none\` keeps worlds in RAM only). --model remote serves frames from worker processes
(npm run worker -- --server URL); a worker silent for --stall-ms (5000) during a clip is dropped.
--model onnx runs the bundled ONNX model (assets/models/spatia-tiny.onnx, 128×72) or --onnx-model FILE.
--threads N runs the procedural model in N worker threads beside the main thread, which keeps the
memory, the sockets and the encoding (0: all on the main thread). Default auto: the cores minus two
(one for the main thread, one for sockets, GC and the OS), at most 8; 0 on 2 cores, where a model
thread measured slower for players sharing a world (docs/operations.md). --view-threads N renders the
memory views that condition every clip in N worker threads reading the memory in place; default 0
(on the main thread): on 2 cores they measured slower (docs/operations.md). --size WxH sets the frame size of
the procedural model and of remote workers (default ${MODEL_DEFAULTS.width}x${MODEL_DEFAULTS.height}; --model remote --size 128x72 serves
workers started with --model onnx). The limits that protect the server (players per world ${DEFAULT_LIMITS.playersPerWorld},
worlds in RAM ${DEFAULT_LIMITS.loadedWorlds}, idle unload after ${DEFAULT_LIMITS.worldIdleS} s, ${DEFAULT_LIMITS.worldsPerMinute} new worlds and ${DEFAULT_LIMITS.promptsPerMinute} prompts and ${DEFAULT_LIMITS.editsPerMinute} edits a minute per connection,
viewers silent for ${DEFAULT_LIMITS.unresponsiveMs} ms dropped, ${DEFAULT_LIMITS.mirrorKbps} kbit/s of memory mirror per player (0: none), ${DEFAULT_KEYFRAME_RAM_BYTES / 2 ** 20} MiB of keyframe images per world in RAM,
${DEFAULT_RECORDING_CAP_BYTES / 2 ** 20} MiB per recorded session) and their SPATIA_* variables: docs/operations.md.
--redis URL (SPATIA_REDIS) makes this server one node of a cluster: each world is served by one node
at a time, which holds its lease in Redis (renewed every third of --lease-ms, default ${DEFAULT_LEASE_MS}); a player
who joins a world another node serves is sent there. Every node opens the same --store: a SQLite file (nodes on one machine) or a PostgreSQL
database (nodes on several machines).
--node-url is the address players reach this node at (default http://HOST:PORT/; needs a fixed
--port). npm run cluster starts a local cluster: docs/deploy.md.`;

const DEFAULTS: Record<string, string> = {
  port: '8080',
  host: '127.0.0.1',
  model: 'procedural',
  voxel: String(DEFAULT_VOXEL_SIZE_M),
  clipFrames: '1',
  jpegQuality: '80',
  queueFrames: '2',
  logLevel: 'info',
  store: 'data/spatia.sqlite',
  stallMs: '5000',
  threads: 'auto',
  viewThreads: '0',
  playersPerWorld: String(DEFAULT_LIMITS.playersPerWorld),
  loadedWorlds: String(DEFAULT_LIMITS.loadedWorlds),
  worldIdleS: String(DEFAULT_LIMITS.worldIdleS),
  worldsPerMinute: String(DEFAULT_LIMITS.worldsPerMinute),
  promptsPerMinute: String(DEFAULT_LIMITS.promptsPerMinute),
  editsPerMinute: String(DEFAULT_LIMITS.editsPerMinute),
  unresponsiveMs: String(DEFAULT_LIMITS.unresponsiveMs),
  mirrorKbps: String(DEFAULT_LIMITS.mirrorKbps),
  keyframeRamMib: String(DEFAULT_KEYFRAME_RAM_BYTES / 2 ** 20),
  recordingCapMib: String(DEFAULT_RECORDING_CAP_BYTES / 2 ** 20),
  leaseMs: String(DEFAULT_LEASE_MS),
};
const FLAG_OF: Record<string, string> = {
  workerToken: 'worker-token',
  stallMs: 'stall-ms',
  clipFrames: 'clip-frames',
  jpegQuality: 'jpeg-quality',
  queueFrames: 'queue',
  logLevel: 'log-level',
  playersPerWorld: 'players-per-world',
  loadedWorlds: 'loaded-worlds',
  worldIdleS: 'world-idle-s',
  worldsPerMinute: 'worlds-per-minute',
  promptsPerMinute: 'prompts-per-minute',
  editsPerMinute: 'edits-per-minute',
  unresponsiveMs: 'unresponsive-ms',
  mirrorKbps: 'mirror-kbps',
  keyframeRamMib: 'keyframe-ram-mib',
  recordingCapMib: 'recording-cap-mib',
  viewThreads: 'view-threads',
  nodeUrl: 'node-url',
  leaseMs: 'lease-ms',
};
const ENV_OF = (key: string): string => `SPATIA_${(FLAG_OF[key] ?? key).toUpperCase().replace(/-/g, '_')}`;

/** Parses flags and environment; throws a SpatiaError naming the bad setting. Returns undefined for --help. */
export function parseServerConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      model: { type: 'string' },
      scene: { type: 'string' },
      voxel: { type: 'string' },
      'clip-frames': { type: 'string' },
      'jpeg-quality': { type: 'string' },
      queue: { type: 'string' },
      'log-level': { type: 'string' },
      store: { type: 'string' },
      'worker-token': { type: 'string' },
      'onnx-model': { type: 'string' },
      threads: { type: 'string' },
      'view-threads': { type: 'string' },
      'stall-ms': { type: 'string' },
      size: { type: 'string' },
      'players-per-world': { type: 'string' },
      'loaded-worlds': { type: 'string' },
      'world-idle-s': { type: 'string' },
      'worlds-per-minute': { type: 'string' },
      'prompts-per-minute': { type: 'string' },
      'edits-per-minute': { type: 'string' },
      'unresponsive-ms': { type: 'string' },
      'mirror-kbps': { type: 'string' },
      'keyframe-ram-mib': { type: 'string' },
      'recording-cap-mib': { type: 'string' },
      redis: { type: 'string' },
      'node-url': { type: 'string' },
      'lease-ms': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(DEFAULTS)) {
    const flag = (values as Record<string, string | boolean | undefined>)[FLAG_OF[key] ?? key];
    raw[key] = (typeof flag === 'string' ? flag : undefined) ?? env[ENV_OF(key)] ?? DEFAULTS[key];
  }
  raw.scene = values.scene;
  raw.workerToken = values['worker-token'] ?? env.SPATIA_WORKER_TOKEN;
  raw.onnxModel = values['onnx-model'] ?? env.SPATIA_ONNX_MODEL;
  raw.size = values.size ?? env.SPATIA_SIZE;
  raw.redis = values.redis ?? env.SPATIA_REDIS;
  raw.nodeUrl = values['node-url'] ?? env.SPATIA_NODE_URL;
  const r = serverConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const key = String(i.path[0]);
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      // A store URL may hold a password: it is not echoed.
      `--${FLAG_OF[key] ?? key} / ${ENV_OF(key)} = "${key === 'store' ? withoutPassword(String(raw[key])) : raw[key]}": ${i.message}`,
    );
  }
  if (r.data.redis && !r.data.nodeUrl && r.data.port === 0)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      '--redis needs a fixed --port or a --node-url: other nodes send players to this address',
    );
  if (r.data.redis && r.data.store === 'none')
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      '--redis needs a --store: a world moves between nodes through the store they share',
    );
  if (r.data.model === 'scene' && !r.data.scene)
    throw new SpatiaError('INVALID_ARGUMENT', '--model scene needs --scene NAME|FILE (the scene it renders)');
  return r.data;
}
