import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
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
});
