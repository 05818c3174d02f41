import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

/**
 * Copies what the client loads at run time into client/public (served from the page's folder):
 * onnxruntime-web's wasm runtime and the client's hole-filling model. Nothing is fetched from
 * elsewhere.
 */
function runtimeAssets(): Plugin {
  return {
    name: 'spatia-runtime-assets',
    buildStart() {
      const ortDir = 'client/public/ort';
      const modelDir = 'client/public/models';
      mkdirSync(ortDir, { recursive: true });
      mkdirSync(modelDir, { recursive: true });
      for (const f of ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'])
        copyFileSync(join('node_modules/onnxruntime-web/dist', f), join(ortDir, f));
      const model = 'assets/models/hole-filler.onnx';
      if (existsSync(model)) copyFileSync(model, join(modelDir, 'hole-filler.onnx'));
    },
  };
}

/** Builds the Babylon.js client from client/ into client/dist (served by the game server). */
export default defineConfig({
  root: 'client',
  base: './',
  plugins: [runtimeAssets()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 4000, target: 'es2022' },
  server: { proxy: { '/socket.io': { target: 'ws://localhost:8080', ws: true } } },
});
