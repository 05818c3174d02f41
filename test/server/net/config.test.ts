import { describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../../server/config.ts';

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

  it('names the bad setting and the variable it came from', () => {
    const bad: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--port', '70000'], {}, /--port \/ SPATIA_PORT = "70000"/],
      [[], { SPATIA_PORT: 'http' }, /SPATIA_PORT = "http"/],
      [['--model', 'gpt'], {}, /--model .*"gpt"/],
      [['--voxel', '0'], {}, /--voxel/],
      [['--clip-frames', '0'], {}, /--clip-frames/],
      [['--jpeg-quality', '101'], {}, /--jpeg-quality/],
      [['--model', 'scene'], {}, /needs --scene/],
    ];
    for (const [argv, env, re] of bad) expect(() => parseServerConfig(argv, env)).toThrow(re);
    expect(() => parseServerConfig(['--bogus'], {})).toThrow(/Unknown option/);
  });
});
