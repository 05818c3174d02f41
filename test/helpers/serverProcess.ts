import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `server/main.ts` as its own process (as `npm start` runs it), resolved once it listens. */
export async function spawnServer(
  args: string[],
  nodeArgs: readonly string[] = [],
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const port = await freePort();
  // Through the allocator wrapper `npm start` uses (it execs, so the child's pid is the server's).
  const child = spawn(
    'sh',
    [
      'tools/withAllocator.sh',
      process.execPath,
      ...nodeArgs,
      '--import',
      'tsx',
      'server/main.ts',
      '--port',
      String(port),
      '--log-level',
      'warn',
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s\n${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}\n${stderr}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('Spatia is running')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  /** Everything the server wrote to stdout and stderr so far. */
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  return { child, url: `http://127.0.0.1:${port}/`, output: () => stdout + stderr };
}

/** Kills hard and waits for the exit. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** A reference worker taking clips from the cluster's queue; resolves once it is registered. */
export async function queueWorker(
  redisUrl: string,
  name: string,
  extra: string[] = [],
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'server/remote/workerMain.ts',
      '--queue',
      redisUrl,
      '--name',
      name,
      '--lock-ms',
      '2000',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await outputSays(child, 'takes clips from', `worker ${name}`);
  return child;
}

/**
 * Resolves once the child's stdout says `text`; rejects, with what it wrote to stderr, when it
 * exits first or says nothing for 30 s (it is killed then).
 */
export async function outputSays(child: ChildProcess, text: string, who: string): Promise<void> {
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${who} did not start in 30 s\n${err}`));
    }, 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes(text)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${who} exited ${code}\n${err}`));
    });
  });
}
