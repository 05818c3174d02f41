import { readFileSync } from 'node:fs';
import { SpatiaError } from '../../shared/errors.ts';
import { parseTrajectory, type Trajectory } from '../world/trajectory.ts';

/** A trajectory JSON file (docs/formats.md); a clear TRAJECTORY_FORMAT error names the file. */
export function loadTrajectoryFile(path: string): Trajectory {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SpatiaError('TRAJECTORY_FORMAT', `cannot read trajectory ${path}: ${(e as Error).message}`);
  }
  try {
    return parseTrajectory(json);
  } catch (e) {
    if (e instanceof SpatiaError) throw new SpatiaError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}
