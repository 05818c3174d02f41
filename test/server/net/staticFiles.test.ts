import { type ChildProcess, spawn } from 'node:child_process';
import fs, { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { staticHandler } from '../../../server/net/staticFiles.ts';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One raw HTTP request (the path goes out exactly as written: no URL normalisation). */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  agent?: Agent,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer in 5 s')));
    req.end();
  });
}

describe('static files (the built client)', () => {
  let dir: string;
  let root: string;
  let server: Server;
  let port: number;
  const script = `export const answer = ${'42 + '.repeat(400)}0;\n`;
  /** Called with the response before the handler runs (to stage races). */
  let before: ((res: import('node:http').ServerResponse) => void) | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spatia-static-'));
    root = join(dir, 'dist');
    mkdirSync(join(root, 'assets'), { recursive: true });
    mkdirSync(join(root, 'ort'), { recursive: true });
    mkdirSync(join(root, 'models'), { recursive: true });
    writeFileSync(join(dir, 'secret.txt'), 'outside the root');
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Spatia</title>');
    writeFileSync(join(root, 'assets/main-Ab12Cd34.js'), script);
    writeFileSync(join(root, 'assets/main-Ab12Cd34.js.br'), brotliCompressSync(script));
    writeFileSync(join(root, 'assets/main-Ab12Cd34.js.gz'), gzipSync(script));
    writeFileSync(
      join(root, 'ort/ort-wasm-simd-threaded.wasm'),
      Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
    );
    writeFileSync(join(root, 'ort/ort-wasm-simd-threaded.mjs'), 'export default 1;\n');
    writeFileSync(join(root, 'models/hole-filler.onnx'), Buffer.alloc(64, 7));
    writeFileSync(join(root, '.build-inputs.json'), '{}');
    const handler = staticHandler(root);
    server = createServer((req, res) => {
      before?.(res);
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html for / with validators and no-cache, and answers 304 to its ETag', async () => {
    const first = await get(port, '/');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(first.body.toString()).toContain('<title>Spatia</title>');
    expect(first.headers['cache-control']).toBe('no-cache');
    expect(first.headers.etag).toMatch(/^W\/".+"$/);
    expect(new Date(first.headers['last-modified'] ?? '').getTime()).toBeGreaterThan(0);

    const again = await get(port, '/', { 'if-none-match': first.headers.etag ?? '' });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers['cache-control']).toBe('no-cache');

    const changed = await get(port, '/index.html', { 'if-none-match': 'W/"0-0"' });
    expect(changed.status).toBe(200);
  });

  it('caches hashed assets for a year (immutable) and negotiates brotli and gzip', async () => {
    const plain = await get(port, '/assets/main-Ab12Cd34.js');
    expect(plain.status).toBe(200);
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(script);

    const br = await get(port, '/assets/main-Ab12Cd34.js', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(br.headers.vary).toBe('Accept-Encoding');
    expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(brotliDecompressSync(br.body).toString()).toBe(script);

    const gz = await get(port, '/assets/main-Ab12Cd34.js', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(script);
    expect(gz.headers.etag).not.toBe(br.headers.etag);

    const notModified = await get(port, '/assets/main-Ab12Cd34.js', {
      'accept-encoding': 'br',
      'if-none-match': br.headers.etag ?? '',
    });
    expect(notModified.status).toBe(304);
    expect(notModified.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('sends the wasm runtime, its module and the model with their types', async () => {
    const wasm = await get(port, '/ort/ort-wasm-simd-threaded.wasm');
    expect(wasm.status).toBe(200);
    expect(wasm.headers['content-type']).toBe('application/wasm');
    expect(wasm.body.subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
    expect((await get(port, '/ort/ort-wasm-simd-threaded.mjs')).headers['content-type']).toBe(
      'text/javascript; charset=utf-8',
    );
    const onnx = await get(port, '/models/hole-filler.onnx');
    expect(onnx.headers['content-type']).toBe('application/octet-stream');
    expect(onnx.body.length).toBe(64);
  });

  it('answers HEAD without a body and other methods with 405', async () => {
    const head = await get(port, '/assets/main-Ab12Cd34.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(script.length);
    expect(head.body.length).toBe(0);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const reply = await get(port, '/index.html', {}, method);
      expect(reply.status).toBe(405);
      expect(reply.headers.allow).toBe('GET, HEAD');
    }
  });

  it('refuses paths outside the root, dot-files and missing files with 404', async () => {
    for (const path of [
      '/../package.json',
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/.build-inputs.json',
      '/%E0%A4%A',
      '/missing.js',
      '/assets/',
    ]) {
      const reply = await get(port, path);
      expect(reply.status, path).toBe(404);
      expect(reply.body.toString(), path).not.toContain('outside the root');
    }
  });

  it('survives a file that vanishes between lookup and read', async () => {
    const file = join(root, 'assets/gone-Zz99.js');
    writeFileSync(file, 'export {};\n');
    before = (res) => res.once('pipe', () => rmSync(file));
    // The 200 header is out when the read fails: the connection is closed (the client sees it cut).
    await expect(get(port, '/assets/gone-Zz99.js')).rejects.toThrow(/aborted|hang up|ECONNRESET/);
    before = undefined;
    expect((await get(port, '/')).status).toBe(200);
    expect((await get(port, '/assets/gone-Zz99.js')).status).toBe(404);
  });

  it('answers 404 when a file vanishes between its existence check and its stat (the lookup race)', async () => {
    const file = join(root, 'assets/raced-Ww66.js');
    writeFileSync(file, 'export {};\n');
    // sirv looks a file up with existsSync, then statSync: remove the file between the two, once.
    // (sirv imports node:fs as an ES namespace: syncBuiltinESMExports carries the change over.)
    const real = fs.statSync;
    const patchable = fs as { statSync: typeof fs.statSync };
    const restore = () => {
      patchable.statSync = real;
      syncBuiltinESMExports();
    };
    patchable.statSync = ((path: fs.PathLike, options?: fs.StatSyncOptions) => {
      if (path === file) {
        restore();
        rmSync(file);
      }
      return real(path, options);
    }) as typeof fs.statSync;
    syncBuiltinESMExports();
    try {
      const reply = await get(port, '/assets/raced-Ww66.js');
      expect(patchable.statSync).toBe(real); // the race was staged
      expect(reply.status).toBe(404);
      expect(reply.headers['cache-control']).toBe('no-cache');
    } finally {
      restore();
    }
    expect((await get(port, '/')).status).toBe(200);
  });

  it('survives a file that becomes a directory between lookup and open (EISDIR from the stream)', async () => {
    const file = join(root, 'assets/dir-Yy88.js');
    writeFileSync(file, 'export {};\n');
    before = (res) =>
      res.once('pipe', () => {
        rmSync(file);
        mkdirSync(file);
      });
    await expect(get(port, '/assets/dir-Yy88.js')).rejects.toThrow(/aborted|hang up|ECONNRESET/);
    before = undefined;
    expect((await get(port, '/')).status).toBe(200);
    expect((await get(port, '/assets/dir-Yy88.js')).status).toBe(404);
    rmSync(file, { recursive: true });
  });

  it('sends the whole file when it is deleted while being sent (the open file outlives its name)', async () => {
    const file = join(root, 'assets/big-Xx77.bin');
    const content = Buffer.alloc(8 << 20, 0x5a);
    writeFileSync(file, content);
    before = (res) => res.once('pipe', (source) => source.once('open', () => rmSync(file)));
    const reply = await get(port, '/assets/big-Xx77.bin');
    before = undefined;
    expect(reply.status).toBe(200);
    expect(reply.body.equals(content)).toBe(true);
    expect((await get(port, '/assets/big-Xx77.bin')).status).toBe(404);
    expect((await get(port, '/')).status).toBe(200);
  });

  it('survives files deleted, recreated and replaced by directories while another process hammers them', async () => {
    const names = ['a', 'b', 'c', 'd'].map((n) => `churn-${n}.js`);
    const body = 'export const churn = 1;\n';
    // Another process changes the files as fast as it can: lookup (exists, stat) and open race it.
    const churn = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const path = require('node:path');
         const files = ${JSON.stringify(names.map((n) => join(root, 'assets', n)))};
         const end = Date.now() + 4000;
         for (let i = 0; Date.now() < end; i++) {
           const f = files[i % files.length];
           try { fs.rmSync(f, { recursive: true, force: true }); } catch {}
           try { if (i % 3 === 0) fs.mkdirSync(f); else fs.writeFileSync(f, ${JSON.stringify(body)}); } catch {}
         }`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => churn.once('exit', resolve));
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    onTestFinished(() => {
      churn.kill('SIGKILL');
    });
    while (churn.exitCode === null) {
      await Promise.all(
        names.map((n) =>
          get(port, `/assets/${n}`).then(
            (r) => {
              // A file caught between its creation and its write is sent as it was then (a prefix).
              if (r.status === 200) expect(body.startsWith(r.body.toString())).toBe(true);
              else expect(r.status).toBe(404);
              count(String(r.status));
            },
            () => count('closed'),
          ),
        ),
      );
    }
    await exited;
    // Every request got an answer or a closed connection, and the server still serves.
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(40);
    expect((await get(port, '/')).status).toBe(200);
    for (const n of names) rmSync(join(root, 'assets', n), { recursive: true, force: true });
  }, 30_000);
});

/** A static server in a process of its own with at most 64 file descriptors, and hooks to use them all up. */
const FD_SERVER = `
import { closeSync, openSync } from 'node:fs';
import { createServer } from 'node:http';
const { staticHandler } = await import(process.env.STATIC_MODULE);
const handler = staticHandler(process.env.STATIC_ROOT);
const held = [];
const server = createServer((req, res) => {
  if (req.url === '/__ping') {
    res.end('pong');
    return;
  }
  if (req.url === '/__exhaust') {
    const exhaust = () => {
      try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (e) { return e.code; }
    };
    exhaust();
    // Descriptors still closing (an earlier response's file) are taken too once they are free.
    setTimeout(() => res.end(exhaust()), 200);
    return;
  }
  if (req.url === '/__release') {
    for (const fd of held.splice(0)) closeSync(fd);
    res.end('released');
    return;
  }
  handler(req, res);
});
server.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + server.address().port + '\\n'));
`;

describe('static files under file-descriptor exhaustion (a process of its own)', () => {
  let child: ChildProcess | undefined;
  let dir: string;
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes the one response whose open fails with EMFILE and serves again once descriptors are free', async () => {
    dir = mkdtempSync(join(tmpdir(), 'spatia-static-fd-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Spatia</title>');
    writeFileSync(join(dir, 'app.js'), 'export {};\n');
    const proc = spawn(
      'sh',
      ['-c', 'ulimit -n 64 && exec "$0" --import tsx --input-type=module -e "$FD_SERVER"', process.execPath],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          FD_SERVER,
          STATIC_MODULE: resolve('server/net/staticFiles.ts'),
          STATIC_ROOT: dir,
        },
      },
    );
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const port = await new Promise<number>((resolvePort, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        const m = /listening (\d+)/.exec(d.toString());
        if (m) resolvePort(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`static server exited ${code}\n${stderr}`)));
    });
    // Two kept-alive connections, opened while descriptors are free: one for control, one for files.
    const control = new Agent({ keepAlive: true, maxSockets: 1 });
    const files = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(port, '/__ping', {}, 'GET', control)).body.toString()).toBe('pong');
    expect((await get(port, '/__ping', {}, 'GET', files)).body.toString()).toBe('pong');

    expect((await get(port, '/__exhaust', {}, 'GET', control)).body.toString()).toBe('EMFILE');
    // The lookup needs no descriptor, the open does: the 200 header is out, the connection is cut.
    await expect(get(port, '/app.js', {}, 'GET', files)).rejects.toThrow(/aborted|hang up|ECONNRESET/);
    expect((await get(port, '/__release', {}, 'GET', control)).body.toString()).toBe('released');

    const again = await get(port, '/app.js');
    expect(again.status).toBe(200);
    expect(again.body.toString()).toBe('export {};\n');
    expect(proc.exitCode).toBeNull();
    expect(stderr).not.toMatch(/Error/);
    control.destroy();
    files.destroy();
  }, 30_000);
});
