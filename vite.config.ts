import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import { buildInputs } from './tools/clientBuild.ts';

const PROJECT = dirname(fileURLToPath(import.meta.url));
const HOLE_FILLER = 'assets/models/hole-filler.onnx';

/**
 * Copies the client's hole-filling model into client/public (served from the page's folder).
 * onnxruntime-web's wasm runtime is bundled by Vite under a hashed name in /assets/ (cached as
 * immutable). Nothing is fetched from elsewhere.
 */
function runtimeAssets(): Plugin {
  return {
    name: 'spatia-runtime-assets',
    buildStart() {
      const modelDir = 'client/public/models';
      mkdirSync(modelDir, { recursive: true });
      if (existsSync(HOLE_FILLER)) copyFileSync(HOLE_FILLER, join(modelDir, 'hole-filler.onnx'));
    },
  };
}

const COMPRESSIBLE = /\.(html|js|mjs|css|json|map|svg|wasm|onnx|txt)$/;

/**
 * Writes NAME.br and NAME.gz next to each compressible output file of 1 KiB or more (kept only
 * where they save at least a tenth), which the static server (server/net/staticFiles.ts) sends to
 * clients that accept them. Brotli quality 9, and 5 above 4 MiB (the 14 MB wasm runtime: 0.8 s
 * instead of 2.3 s for 5% more bytes; quality 11 would take over a minute for it).
 */
function precompress(): Plugin {
  let outDir = '';
  const br = promisify(brotliCompress);
  const gz = promisify(gzip);
  return {
    name: 'spatia-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      const files = readdirSync(outDir, { recursive: true, encoding: 'utf8' })
        .filter((name) => COMPRESSIBLE.test(name) && !basename(name).startsWith('.'))
        .map((name) => join(outDir, name))
        .filter((path) => statSync(path).isFile() && statSync(path).size >= 1024);
      await Promise.all(
        files.map(async (path) => {
          const data = readFileSync(path);
          const [b, g] = await Promise.all([
            br(data, {
              params: {
                [constants.BROTLI_PARAM_QUALITY]: data.length > 4 << 20 ? 5 : 9,
                [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
              },
            }),
            gz(data, { level: 9 }),
          ]);
          if (b.length < data.length * 0.9) writeFileSync(`${path}.br`, b);
          if (g.length < data.length * 0.9) writeFileSync(`${path}.gz`, g);
        }),
      );
    },
  };
}

/**
 * Builds the Babylon.js client from client/ into client/dist (served by the game server, which
 * `npm start` builds only when an input changed). `npm run dev` (tools/dev.ts) serves it with hot
 * reload instead and proxies socket.io to the game server at SPATIA_GAME_SERVER.
 */
export default defineConfig({
  root: 'client',
  base: './',
  plugins: [runtimeAssets(), precompress(), buildInputs(PROJECT, [HOLE_FILLER])],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4000,
    target: 'es2022',
    // bench.html: the mirror draw bench `npm run bench:net` opens in Chromium.
    rolldownOptions: {
      input: { main: resolve(PROJECT, 'client/index.html'), bench: resolve(PROJECT, 'client/bench.html') },
    },
  },
  server: {
    proxy: {
      '/socket.io': { target: process.env.SPATIA_GAME_SERVER ?? 'http://127.0.0.1:8080', ws: true },
    },
  },
});
