import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SpatiaError } from '../../shared/errors.ts';
import { WorldStore } from '../store/worldStore.ts';
import { runTool, sessionArg, storeArg } from './cli.ts';

const USAGE = `usage: npm run export -- SESSION --out FILE.mp4 [--store FILE.sqlite|postgres://…] [--crf N]
       npm run export -- --list [--store FILE.sqlite|postgres://…]

Writes a recorded play session as an H.264 MP4 (ffmpeg: apt-get install -y ffmpeg) at the
session's frame rate, with a progress bar. --list prints the recorded sessions.`;

runTool(USAGE, async () => {
  const { values, positionals } = parseArgs({
    options: {
      out: { type: 'string' },
      store: { type: 'string', default: 'data/spatia.sqlite' },
      crf: { type: 'string', default: '20' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const store = new WorldStore(storeArg(values.store), { readonly: true });
  if (values.list) {
    for (const s of store.sessions.listSessions())
      process.stdout.write(
        `${s.id}  world ${s.worldId}  player ${s.player}  ${s.frames} frames  ${s.startedAt}\n`,
      );
    return;
  }
  const { id, session } = sessionArg(store, positionals);
  if (!values.out) throw new SpatiaError('INVALID_ARGUMENT', '--out FILE.mp4 is required');
  const crf = Number(values.crf);
  if (!Number.isInteger(crf) || crf < 0 || crf > 51)
    throw new SpatiaError('INVALID_ARGUMENT', `--crf must be 0..51, got "${values.crf}"`);
  if (session.frames === 0) throw new SpatiaError('INVALID_ARGUMENT', `session ${id} has no frames`);
  const out = resolve(values.out);
  const ffmpeg = spawn(
    'ffmpeg',
    [
      '-y',
      '-loglevel',
      'error',
      '-f',
      'image2pipe',
      '-framerate',
      String(session.fps),
      '-c:v',
      'mjpeg',
      '-i',
      '-',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-preset',
      'veryfast',
      '-crf',
      String(crf),
      '-r',
      String(session.fps),
      '-movflags',
      '+faststart',
      out,
    ],
    { stdio: ['pipe', 'inherit', 'pipe'] },
  );
  let stderr = '';
  ffmpeg.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number>((res, rej) => {
    ffmpeg.once('error', (e) =>
      rej(new SpatiaError('INVALID_ARGUMENT', `cannot run ffmpeg (apt-get install -y ffmpeg): ${e.message}`)),
    );
    ffmpeg.once('exit', (code) => res(code ?? 1));
  });
  const bar = new SingleBar({
    format: 'export [{bar}] {value}/{total} frames | {fps} frames/s | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(session.frames, 0, { fps: '-' });
  const t0 = performance.now();
  let n = 0;
  for (const f of store.sessions.frames(id)) {
    if (!ffmpeg.stdin.write(f.jpeg)) await new Promise((r) => ffmpeg.stdin.once('drain', r));
    n++;
    bar.update(n, { fps: (n / ((performance.now() - t0) / 1000)).toFixed(0) });
  }
  ffmpeg.stdin.end();
  const code = await exited;
  bar.stop();
  if (code !== 0) throw new Error(`ffmpeg failed (exit ${code}): ${stderr}`);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `wrote ${out}: ${n} frames, ${(n / session.fps).toFixed(2)} s at ${session.fps} fps, exported at ${(n / seconds).toFixed(0)} frames/s\n`,
  );
  store.close();
});
