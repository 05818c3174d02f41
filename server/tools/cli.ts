import { resolve } from 'node:path';
import { SpatiaError } from '../../shared/errors.ts';
import { BUNDLED_SCENES, loadBundledScene, loadSceneFile } from '../scene/loadScene.ts';
import type { Scene } from '../scene/sceneFormat.ts';
import { isPostgresUrl } from '../store/postgres/postgresUrl.ts';
import type { WorldStore } from '../store/worldStore.ts';

/** Shared pieces of the command-line tools: flag validation and one way to fail. */

/** A bundled scene by name, or a scene JSON file by path. */
export function sceneArg(nameOrFile: string): Scene {
  return (BUNDLED_SCENES as readonly string[]).includes(nameOrFile)
    ? loadBundledScene(nameOrFile as (typeof BUNDLED_SCENES)[number])
    : loadSceneFile(resolve(nameOrFile));
}

/** An integer flag in [min, max]; anything else is a clear error naming the flag. */
export function intArg(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      `--${flag} must be an integer in ${min}..${max}, got "${value}"`,
    );
  return n;
}

/** A --store flag: a PostgreSQL URL as given, a SQLite file's path resolved. */
export const storeArg = (value: string): string => (isPostgresUrl(value) ? value : resolve(value));

/** The single SESSION positional and its recorded session in `store`; clear errors otherwise. */
export function sessionArg(store: WorldStore, positionals: readonly string[]) {
  const id = positionals[0];
  if (!id || positionals.length !== 1)
    throw new SpatiaError(
      'INVALID_ARGUMENT',
      'give exactly one SESSION id (npm run export -- --list shows them)',
    );
  const session = store.sessions.session(id);
  if (!session) throw new SpatiaError('INVALID_ARGUMENT', `no recorded session "${id}" in ${store.path}`);
  return { id, session };
}

/** Runs a tool's main: bad input prints `error: …` and the usage, exit code 2; other failures exit 1. */
export function runTool(usage: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    if (e instanceof SpatiaError || String((e as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`error: ${(e as Error).message}\n\n${usage}\n`);
      process.exit(2);
    }
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
