import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pose } from '../../shared/camera/pose.ts';

/** Debian's python3 (python3-open3d installs for it, not for a pyenv python on PATH). */
const PYTHON = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));

/** 4×4 world-to-camera (Open3D's extrinsic) of a camera-to-world pose, row-major; OpenCV axes on both sides. */
export function extrinsic(pose: Pose): number[] {
  const r = pose.rotation;
  const t = pose.position;
  const row = (i: number): number[] => [
    r[i]!,
    r[3 + i]!,
    r[6 + i]!,
    -(r[i]! * t[0] + r[3 + i]! * t[1] + r[6 + i]! * t[2]),
  ];
  return [...row(0), ...row(1), ...row(2), 0, 0, 0, 1];
}

/**
 * Runs one of tools/bench/*.py on the folder `dir` with one thread and returns the JSON it prints
 * last; undefined (with the reason on stderr) when Open3D is missing or the script fails.
 */
export function runOpen3dScript<T>(script: string, dir: string, what: string): T | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import open3d'], { stdio: 'ignore' });
  } catch {
    process.stderr.write(
      `\nOpen3D is missing: ${what}. Install it with: apt-get install -y python3-open3d\n`,
    );
    return undefined;
  }
  try {
    const out = execFileSync(PYTHON, [join(here, '../../tools/bench', script), dir], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      maxBuffer: 1 << 26,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as T;
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? e).slice(0, 2000);
    process.stderr.write(`\nthe Open3D peer failed (${what}):\n${stderr}\n`);
    return undefined;
  }
}
