import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const TSX = join(process.cwd(), 'node_modules/.bin/tsx');

describe('npm run render (headless)', () => {
  it('writes one PNG per generated frame of the trajectory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spatia-render-'));
    const traj = join(dir, 'walk.json');
    writeFileSync(
      traj,
      JSON.stringify({
        version: 1,
        waypoints: [
          { t: 0, position: [0, 1.6, 2.2], yawDeg: 0, pitchDeg: -5 },
          { t: 0.2, position: [0, 1.6, 2.0], yawDeg: 20, pitchDeg: -5 },
        ],
      }),
    );
    const out = join(dir, 'frames');
    const { stdout } = await run(TSX, [
      'server/tools/render.ts',
      '--scene',
      'room',
      '--trajectory',
      traj,
      '--out',
      out,
    ]);
    expect(stdout).toMatch(/wrote 6 frames/);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['00001.png', '00002.png', '00003.png', '00004.png', '00005.png', '00006.png']);
    const png = PNG.sync.read(readFileSync(join(out, files[5]!)));
    expect([png.width, png.height]).toEqual([512, 288]);
  }, 60_000);

  it('refuses bad flags and files with exit code 2 and a message', async () => {
    const fail = async (args: string[]): Promise<{ code: number; stderr: string }> => {
      try {
        await run(TSX, ['server/tools/render.ts', ...args]);
        return { code: 0, stderr: '' };
      } catch (e) {
        const err = e as { code: number; stderr: string };
        return { code: err.code, stderr: err.stderr };
      }
    };
    const missing = await fail(['--scene', 'room', '--trajectory', '/nonexistent.json', '--out', '/tmp/x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read trajectory/);
    const unknownModel = await fail([
      '--scene',
      'room',
      '--trajectory',
      'assets/trajectories/room-walk.json',
      '--out',
      '/tmp/x',
      '--model',
      'gpt',
    ]);
    expect(unknownModel.code).toBe(2);
    expect(unknownModel.stderr).toMatch(/unknown model "gpt"/);
    const badSeed = await fail([
      '--scene',
      'room',
      '--trajectory',
      'assets/trajectories/room-walk.json',
      '--out',
      '/tmp/x',
      '--seed',
      'abc',
    ]);
    expect(badSeed.stderr).toMatch(/--seed must be an integer/);
  }, 60_000);
});
