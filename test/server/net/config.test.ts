import { describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../../server/config.ts';
import { autoModelThreads, loadModel } from '../../../server/models/registry.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

describe('server configuration', () => {
  it('takes flags over SPATIA_* environment over defaults', () => {
    const d = parseServerConfig([], {})!;
    expect(d).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      model: 'procedural',
      clipFrames: 1,
      jpegQuality: 80,
    });
    const e = parseServerConfig(['--port', '9000'], { SPATIA_PORT: '7000', SPATIA_CLIP_FRAMES: '4' })!;
    expect(e.port).toBe(9000);
    expect(e.clipFrames).toBe(4);
    expect(parseServerConfig(['--help'], {})).toBeUndefined();
  });

  it('uses the cores it has for model threads unless --threads says otherwise', () => {
    expect(parseServerConfig([], {})!.threads).toBe('auto');
    expect(parseServerConfig(['--threads', '3'], { SPATIA_THREADS: '1' })!.threads).toBe(3);
    expect(parseServerConfig([], { SPATIA_THREADS: '0' })!.threads).toBe(0);
    // auto: the cores minus the main thread's and the process's, at most 8; only the procedural model.
    expect([2, 4, 16, 64].map((cores) => autoModelThreads('procedural', cores))).toEqual([0, 2, 8, 8]);
    expect(autoModelThreads('onnx', 16)).toBe(0);
    expect(autoModelThreads('remote', 16)).toBe(0);
    expect(autoModelThreads('scene', 16)).toBe(0);
  });

  it('joins a cluster with --redis: validated URL, lease and node address; needs a fixed port and a store', () => {
    expect(parseServerConfig([], {})!.redis).toBeUndefined();
    const c = parseServerConfig(['--redis', 'redis://10.0.0.5:6379/2', '--lease-ms', '3000'], {})!;
    expect(c).toMatchObject({ redis: 'redis://10.0.0.5:6379/2', leaseMs: 3000 });
    expect(
      parseServerConfig([], { SPATIA_REDIS: 'redis://r:6379', SPATIA_NODE_URL: 'http://n1:8080/' }),
    ).toMatchObject({ redis: 'redis://r:6379', nodeUrl: 'http://n1:8080/', leaseMs: 5000 });
    expect(() => parseServerConfig(['--redis', 'http://r:6379'], {})).toThrow(
      /--redis .*redis:\/\/ or rediss:\/\//,
    );
    expect(() => parseServerConfig(['--redis', 'redis://r', '--lease-ms', '100'], {})).toThrow(/--lease-ms/);
    expect(() => parseServerConfig(['--redis', 'redis://r', '--node-url', 'n1:80'], {})).toThrow(
      /--node-url/,
    );
    expect(() => parseServerConfig(['--redis', 'redis://r', '--port', '0'], {})).toThrow(
      /fixed --port or a --node-url/,
    );
    expect(() => parseServerConfig(['--redis', 'redis://r', '--store', 'none'], {})).toThrow(
      /needs a --store/,
    );
  });

  it('keeps worlds in a SQLite file or a PostgreSQL database; a bad database URL is refused without echoing its password', () => {
    expect(parseServerConfig([], {})!.store).toBe('data/spatia.sqlite');
    const url = 'postgres://spatia:pw@db.example:5432/worlds';
    expect(parseServerConfig(['--store', url], {})!.store).toBe(url);
    expect(parseServerConfig([], { SPATIA_STORE: 'postgresql://db/w' })!.store).toBe('postgresql://db/w');
    for (const bad of [
      'postgres://spatia:hunter2@db',
      'postgres://spatia:hunter2@db/a/b',
      'postgres://:hunter2@/w',
    ]) {
      const e = (() => {
        try {
          parseServerConfig(['--store', bad], {});
        } catch (error) {
          return error as Error;
        }
      })();
      expect(e?.message).toMatch(/--store .*postgres:\/\/\[USER\[:PASSWORD\]@\]HOST\[:PORT\]\/DATABASE/);
      expect(e?.message).not.toContain('hunter2');
    }
  });

  it('renders memory views on the main thread unless --view-threads asks for worker threads', () => {
    expect(parseServerConfig([], {})!.viewThreads).toBe(0);
    expect(parseServerConfig(['--view-threads', '2'], { SPATIA_VIEW_THREADS: '1' })!.viewThreads).toBe(2);
    expect(parseServerConfig([], { SPATIA_VIEW_THREADS: '3' })!.viewThreads).toBe(3);
    for (const bad of ['-1', '65', 'auto', '1.5'])
      expect(() => parseServerConfig(['--view-threads', bad], {})).toThrow(/--view-threads/);
  });

  it('runs the procedural model in threads when the world is seeded from a scene, but never the scene oracle', async () => {
    const scene = sceneNamed('room');
    const model = await loadModel('procedural', { threads: 1, scene, width: 64, height: 36 });
    expect(model.describe().device).toMatch(/× 1 threads/);
    await model.dispose();
    await expect(loadModel('scene', { threads: 1, scene })).rejects.toThrow(/does not run in model threads/);
  });

  it('names the bad setting and the variable it came from', () => {
    const bad: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--port', '70000'], {}, /--port \/ SPATIA_PORT = "70000"/],
      [[], { SPATIA_PORT: 'http' }, /SPATIA_PORT = "http"/],
      [['--model', 'gpt'], {}, /--model .*"gpt"/],
      [['--voxel', '0'], {}, /--voxel/],
      [['--clip-frames', '0'], {}, /--clip-frames/],
      [['--jpeg-quality', '101'], {}, /--jpeg-quality/],
      [['--model', 'scene'], {}, /needs --scene/],
      [['--threads', 'many'], {}, /--threads \/ SPATIA_THREADS = "many": must be auto or 0..64/],
      [['--threads', '65'], {}, /--threads/],
    ];
    for (const [argv, env, re] of bad) expect(() => parseServerConfig(argv, env)).toThrow(re);
    expect(() => parseServerConfig(['--bogus'], {})).toThrow(/Unknown option/);
  });
});
