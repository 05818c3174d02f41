import { parentPort } from 'node:worker_threads';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { GridMirror, type GridSync, type SharedViewResult, transferables } from '../memory/viewShare.ts';

/**
 * One view thread (see viewThreads.ts): a mirror per world's grid, memory views rendered from the
 * shared chunk records. In: `{id, grid, sync, poses, k}` and `{forget: grid}`; out: `{id, views}`
 * or `{id, error}`.
 */
type Request = { id: number; grid: number; sync: GridSync; poses: Pose[]; k: Intrinsics };

const mirrors = new Map<number, GridMirror>();
const port = parentPort!;

port.on('message', (msg: Request | { forget: number }) => {
  if ('forget' in msg) {
    mirrors.delete(msg.forget);
    return;
  }
  try {
    let mirror = mirrors.get(msg.grid);
    if (!mirror) {
      mirror = new GridMirror();
      mirrors.set(msg.grid, mirror);
    }
    mirror.apply(msg.sync);
    const views: SharedViewResult[] = msg.poses.map((p) => mirror.render(p, msg.k));
    port.postMessage({ id: msg.id, views }, views.flatMap(transferables));
  } catch (e) {
    port.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
