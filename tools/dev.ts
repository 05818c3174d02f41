import { spawn } from 'node:child_process';
import { connect, createServer as createNetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createServer, type ViteDevServer } from 'vite';

/**
 * `npm run dev [-- SERVER OPTIONS]`: the game server (server/main.ts under `tsx watch`, restarted
 * when its code changes) on a free port, and Vite's dev server in front of it: the client with hot
 * reload, socket.io (websocket, /socket.io) proxied to the game server. Server options pass through
 * (`--port` picks the game server's port; Vite's own is 5173 or the next free one).
 */
const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const { values } = parseArgs({
  args,
  options: { port: { type: 'string' }, host: { type: 'string' } },
  strict: false,
});
const givenPort = typeof values.port === 'string' ? values.port : undefined;
const port = givenPort ?? String(await freePort());
const host = typeof values.host === 'string' ? values.host : (process.env.SPATIA_HOST ?? '127.0.0.1');
/** Where the proxy reaches the game server: its own address, or loopback when it listens on all. */
const target = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host;

const game = spawn(
  process.execPath,
  [
    fileURLToPath(import.meta.resolve('tsx/cli')),
    'watch',
    '--clear-screen=false',
    join(PROJECT, 'server/main.ts'),
    ...args,
    ...(givenPort ? [] : ['--port', port]),
  ],
  { cwd: PROJECT, stdio: 'inherit' },
);
let vite: ViteDevServer | undefined;
let stopping = false;
const stop = (code: number): void => {
  if (stopping) return;
  stopping = true;
  game.kill('SIGTERM');
  void (vite?.close() ?? Promise.resolve()).finally(() => process.exit(code));
};
game.once('exit', (code) => stop(code ?? 1));
process.once('SIGINT', () => stop(0));
process.once('SIGTERM', () => stop(0));

process.env.SPATIA_GAME_SERVER = `http://${target.includes(':') ? `[${target}]` : target}:${port}`;
vite = await createServer({ configFile: join(PROJECT, 'vite.config.ts') });
await vite.listen();
await untilListening(target, Number(port));
vite.printUrls();
const url = vite.resolvedUrls?.local[0];
if (url) process.stdout.write(`\nSpatia (dev): open ${url}?world=room (the client reloads on save)\n\n`);

/** Resolves once something accepts connections at host:port (the game server has started). */
async function untilListening(host: string, port: number): Promise<void> {
  while (!stopping) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A port nobody listens on at the moment (the OS's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}
