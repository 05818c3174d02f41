import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import sirv from 'sirv';

/** Vite's hashed output (`assets/NAME-HASH.ext`, a hashed onnxruntime wasm among it): new content, new name. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Names that outlive a change of content (index.html, `ort/`, `models/`): revalidated by ETag. */
const REVALIDATE = 'no-cache';

/** Content types by extension; sirv's own table lacks `.onnx` and `.ico` and leaves out charsets. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/**
 * Serves the built client from `root` through sirv: GET/HEAD only (405 otherwise), `index.html`
 * for `/`, ETag (304 on If-None-Match) and Last-Modified, the build's precompressed `.br`/`.gz`
 * siblings when the request accepts them, immutable caching under `/assets/`, no paths outside
 * `root` and no dot-files (404), whole files only (Range is ignored). Files are looked up per
 * request, so a rebuild while the server runs is picked up; a file that vanishes between lookup
 * and read ends that response (the socket is closed) and nothing else.
 */
export function staticHandler(root: string): (req: IncomingMessage, res: ServerResponse) => void {
  const serve = sirv(root, {
    dev: true, // look files up per request (no start-up snapshot of the folder)
    etag: true,
    gzip: true,
    brotli: true,
    extensions: ['html'],
    setHeaders(res, pathname) {
      // An extensionless path is index.html or NAME.html (the only extension looked up).
      res.setHeader('content-type', TYPES[extname(pathname) || '.html'] ?? 'application/octet-stream');
    },
    onNoMatch: notFound,
  });
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end();
      return;
    }
    const path = requestPath(req.url);
    if (path === undefined || path.split('/').some((segment) => segment.startsWith('.'))) {
      notFound(req, res);
      return;
    }
    delete req.headers.range;
    // Set before sirv runs so that its 304 answers carry the policy too (sirv keeps headers set here).
    res.setHeader('cache-control', path.startsWith('/assets/') ? IMMUTABLE : REVALIDATE);
    res.setHeader('x-content-type-options', 'nosniff');
    // sirv pipes a read stream without an error listener: a file removed after the lookup would
    // otherwise throw from the stream. The headers are out by then, so end the connection.
    res.once('pipe', (source) => source.once('error', () => res.destroy()));
    try {
      serve(req, res);
    } catch {
      // The lookup's stat raced a removal (or similar): answer 404 if nothing was sent yet.
      if (res.headersSent) res.destroy();
      else notFound(req, res);
    }
  };
}

/** The decoded path of a request URL as sirv sees it (`%2F` stays encoded); undefined if malformed. */
function requestPath(url: string | undefined): string | undefined {
  const raw = (url ?? '/').split('?', 1)[0] ?? '/';
  try {
    return decodeURI(raw);
  } catch {
    return undefined;
  }
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': REVALIDATE });
  res.end('not found');
}
