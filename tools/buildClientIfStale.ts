import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { whyClientBuildIsStale } from './clientBuild.ts';

/**
 * `npm start`'s first step: builds the client into client/dist only when the last build is missing
 * or one of its inputs (a module it bundled, a copied runtime file, the configuration, the installed
 * packages) changed since; otherwise it does nothing.
 */
const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..');
const why = whyClientBuildIsStale(PROJECT, join(PROJECT, 'client/dist'));
if (why) {
  process.stdout.write(`building the client (${why})…\n`);
  const { build } = await import('vite'); // only when building: loading Vite takes about a second
  await build({ configFile: join(PROJECT, 'vite.config.ts'), logLevel: 'warn' });
}
