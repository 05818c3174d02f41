import { defineConfig } from 'vite';

/** Builds the Babylon.js client from client/ into client/dist (served by the game server). */
export default defineConfig({
  root: 'client',
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 4000, target: 'es2022' },
  server: { proxy: { '/socket.io': { target: 'ws://localhost:8080', ws: true } } },
});
