import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Plugin } from 'vite';

/**
 * What a client build read, so that `npm start` can tell whether client/dist is current without
 * building (tools/buildClientIfStale.ts). Written by the build itself (the `buildInputs` plugin in
 * vite.config.ts) as client/dist/.build-inputs.json: every module the bundle contains (client/,
 * shared/, node_modules/), the files copied into client/public, and the build's configuration.
 * A dot-file: the static server never serves those.
 */
const INPUTS_FILE = '.build-inputs.json';

interface BuildInputs {
  /** When the build started (ms since the epoch): a file changed after it is newer than the build. */
  readonly startedMs: number;
  /** Project-relative path → [size, mtimeMs] when the build finished. */
  readonly files: Record<string, [number, number]>;
}

/** Files every build depends on besides its modules (configuration and the installed packages). */
const ALWAYS = [
  'vite.config.ts',
  'tools/clientBuild.ts',
  'tsconfig.json',
  'package.json',
  'node_modules/.package-lock.json',
];

/**
 * Records the build's inputs in `outDir` once it has written everything. `extra` names files the
 * build copies rather than bundles (project-relative).
 */
export function buildInputs(projectRoot: string, extra: readonly string[]): Plugin {
  let startedMs = 0;
  let outDir = '';
  const modules = new Set<string>();
  return {
    name: 'spatia-build-inputs',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    buildStart() {
      startedMs = Date.now();
      modules.clear();
    },
    generateBundle(_options, bundle) {
      for (const id of this.getModuleIds()) modules.add(id);
      for (const file of Object.values(bundle))
        if (file.type === 'chunk') for (const id of file.moduleIds) modules.add(id);
    },
    closeBundle() {
      const files: BuildInputs['files'] = {};
      for (const id of [...modules, ...ALWAYS, ...extra]) {
        const path = resolve(projectRoot, id.split('?', 1)[0] ?? id);
        if (id.startsWith('\0') || !isAbsolute(path) || !existsSync(path)) continue;
        const stat = statSync(path);
        if (stat.isFile()) files[relative(projectRoot, path)] = [stat.size, stat.mtimeMs];
      }
      const inputs: BuildInputs = { startedMs, files };
      writeFileSync(join(outDir, INPUTS_FILE), JSON.stringify(inputs));
    },
  };
}

/**
 * Why the client build in `distDir` must be redone, or undefined when it is current: every input
 * it recorded still exists with the same size and modification time, none changed after the build
 * started, and the configuration files are the same.
 */
export function whyClientBuildIsStale(projectRoot: string, distDir: string): string | undefined {
  if (!existsSync(join(distDir, 'index.html'))) return 'no build yet';
  let inputs: BuildInputs;
  try {
    inputs = JSON.parse(readFileSync(join(distDir, INPUTS_FILE), 'utf8')) as BuildInputs;
  } catch {
    return 'the last build did not record its inputs';
  }
  for (const path of ALWAYS)
    if (existsSync(join(projectRoot, path)) && !(path in inputs.files)) return `${path} is new`;
  for (const [path, [size, mtimeMs]] of Object.entries(inputs.files)) {
    const abs = join(projectRoot, path);
    if (!existsSync(abs)) return `${path} is gone`;
    const stat = statSync(abs);
    if (stat.size !== size || stat.mtimeMs !== mtimeMs || stat.mtimeMs > inputs.startedMs)
      return `${path} changed`;
  }
  return undefined;
}
