import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { beforeAll, describe, expect, it } from 'vitest';

// The layering rules (.dependency-cruiser.mjs) on the real tree, and on a fixture tree with
// deliberate violations, so a rule that silently stops matching fails here.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/layering', import.meta.url));

/** What `npm run lint:deps` cruises. */
const SOURCES = ['server', 'shared', 'client', 'tools', 'test', 'vite.config.ts', 'vitest.config.ts'];

let options: ICruiseOptions;

beforeAll(async () => {
  options = await extractDepcruiseOptions(`${ROOT}/.dependency-cruiser.mjs`);
});

/** Violations as sorted `rule: from -> to` lines, paths relative to the cruised root. */
async function violations(baseDir: string, sources: string[], tsConfig?: string): Promise<string[]> {
  const transpile = tsConfig === undefined ? {} : { tsConfig: extractTSConfig(tsConfig) };
  const result = await cruise(sources, { ...options, baseDir }, {}, transpile);
  if (typeof result.output === 'string') throw new Error('expected the json output of cruise()');
  const found: IViolation[] = result.output.summary.violations;
  return found.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
}

describe('layering rules (.dependency-cruiser.mjs)', () => {
  it('the real tree has no violations', async () => {
    expect(await violations(ROOT, SOURCES, `${ROOT}/tsconfig.json`)).toEqual([]);
  });

  it('report exactly the deliberate violations of the fixture', async () => {
    expect(await violations(FIXTURE, ['shared', 'server', 'client'])).toEqual(
      [
        'shared-no-node-builtins: shared/usesFs.ts -> fs',
        'memory-only-shared-and-memory: server/memory/usesNet.ts -> server/net/socketLayer.ts',
        'net-only-from-main: server/memory/usesNet.ts -> server/net/socketLayer.ts',
        'net-only-from-main: server/world/session.ts -> server/net/sendQueue.ts',
        'pure-no-node-builtins: server/eval/loop.ts -> path',
        'pure-only-pure: server/eval/loop.ts -> server/store/store.ts',
        // a cycle is reported once, at its first edge
        'no-circular: server/util/ping.ts -> server/util/pong.ts',
        'client-not-to-server: client/src/main.ts -> server/memory/grid.ts',
      ].sort(),
    );
  });
});
