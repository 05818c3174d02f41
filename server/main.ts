import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ControlBus, openControlBus } from './cluster/controlBus.ts';
import { WorldDirectory } from './cluster/worldDirectory.ts';
import { parseServerConfig, SERVER_USAGE } from './config.ts';
import { createLogger } from './logger.ts';
import { autoModelThreads, loadModel } from './models/registry.ts';
import { startGameServer } from './net/gameServer.ts';
import { ClipQueue } from './remote/clipQueue.ts';
import { RemoteWorkerPool } from './remote/workerPool.ts';
import { isPostgresUrl } from './store/postgres/postgresUrl.ts';
import { WorldStore } from './store/worldStore.ts';
import { runTool, sceneArg } from './tools/cli.ts';
import { ViewThreads } from './world/viewThreads.ts';

const CLIENT_DIR = join(dirname(fileURLToPath(import.meta.url)), '../client/dist');

runTool(SERVER_USAGE, async () => {
  const cfg = parseServerConfig(process.argv.slice(2), process.env);
  if (!cfg) {
    process.stdout.write(`${SERVER_USAGE}\n`);
    return;
  }
  const logger = createLogger(cfg.logLevel);
  let directory: WorldDirectory | undefined;
  let clips: ClipQueue | undefined;
  let bus: ControlBus | undefined;
  if (cfg.redis) {
    const url = cfg.nodeUrl ?? `http://${cfg.host === '0.0.0.0' ? hostname() : cfg.host}:${cfg.port}/`;
    const node = { id: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`, url };
    directory = await WorldDirectory.open({ url: cfg.redis, node, leaseMs: cfg.leaseMs, logger });
    // Clustered remote workers take clips from one queue on the same Redis.
    if (cfg.model === 'remote') clips = await ClipQueue.open(cfg.redis, logger);
    bus = await openControlBus(cfg.redis, logger);
    logger.info({ node: node.id, url, redis: cfg.redis, leaseMs: directory.leaseMs }, 'cluster node ready');
  }
  const model = await loadModel(cfg.model, {
    clipQueue: clips && directory && { clips, nodeUrl: directory.node.url },
    scene: cfg.scene ? sceneArg(cfg.scene) : undefined,
    onnxPath: cfg.onnxModel,
    threads: cfg.threads === 'auto' ? autoModelThreads(cfg.model) : cfg.threads,
    width: cfg.size?.[0],
    height: cfg.size?.[1],
    workerToken: cfg.workerToken,
    stallMs: cfg.stallMs,
    logger,
  });
  const info = model.describe();
  logger.info({ model: info.name, device: info.device, size: `${info.width}x${info.height}` }, 'model ready');
  const clientDir = existsSync(join(CLIENT_DIR, 'index.html')) ? CLIENT_DIR : undefined;
  if (!clientDir)
    logger.warn('client/dist is missing: run `npm run build` (npm start does) to serve the game page');
  let store: WorldStore | undefined;
  if (cfg.store !== 'none') {
    if (!isPostgresUrl(cfg.store)) mkdirSync(dirname(resolve(cfg.store)), { recursive: true });
    store = new WorldStore(cfg.store, {
      keyframeRamBytes: cfg.keyframeRamMib * 2 ** 20,
      recordingCapBytes: cfg.recordingCapMib * 2 ** 20,
      log: logger,
    });
    logger.info({ store: store.path, worlds: store.listWorlds().length }, 'world store open');
  }
  const views = cfg.viewThreads > 0 ? new ViewThreads(cfg.viewThreads) : undefined;
  const server = await startGameServer({
    directory,
    adapter: bus?.adapter,
    views,
    store,
    workers: model instanceof RemoteWorkerPool ? model : undefined,
    port: cfg.port,
    host: cfg.host,
    model,
    voxelSizeM: cfg.voxel,
    clipFrames: cfg.clipFrames,
    jpegQuality: cfg.jpegQuality,
    queueFrames: cfg.queueFrames,
    clientDir,
    logger,
    limits: {
      playersPerWorld: cfg.playersPerWorld,
      loadedWorlds: cfg.loadedWorlds,
      worldIdleS: cfg.worldIdleS,
      worldsPerMinute: cfg.worldsPerMinute,
      promptsPerMinute: cfg.promptsPerMinute,
      editsPerMinute: cfg.editsPerMinute,
      unresponsiveMs: cfg.unresponsiveMs,
      mirrorKbps: cfg.mirrorKbps,
    },
  });
  process.stdout.write(
    `\nSpatia is running: open ${server.url}?world=room (ground-truth seeded room) or ${server.url}?world=my-world&prompt=a%20snowy%20forest\n\n`,
  );
  const stop = (): void => {
    void server.close().then(async () => {
      // Leases go last: the next node to take a world must find every commit in the store.
      store?.close();
      await clips?.close();
      await directory?.close();
      await bus?.close();
      void views?.dispose();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
