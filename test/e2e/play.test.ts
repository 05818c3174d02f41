import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shrinkRgb } from '../../server/io/png.ts';
import type { MemoryView } from '../../server/memory/renderView.ts';
import { psnr } from '../../server/metrics/imageMetrics.ts';
import { OnnxModel } from '../../server/models/onnx/onnxModel.ts';
import { DEFAULT_ONNX_MODEL } from '../../server/models/registry.ts';
import { modelIntrinsics } from '../../server/models/worldModel.ts';
import type { RunningServer } from '../../server/net/gameServer.ts';
import { renderScene } from '../../server/scene/rayCaster.ts';
import type { Scene } from '../../server/scene/sceneFormat.ts';
import { WorldStore } from '../../server/store/worldStore.ts';
import { type CameraState, poseOfCamera } from '../../shared/camera/controller.ts';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { CHROMIUM, launchChromium } from '../helpers/chromium.ts';
import { sceneNamed } from '../helpers/groundTruth.ts';
import { startTestServer } from '../helpers/server.ts';

/**
 * End to end: the built Babylon.js client in Debian's Chromium (headless, software WebGL), the
 * real server over loopback. Runs wherever /usr/bin/chromium exists, and always in CI.
 */
const run = existsSync(CHROMIUM) || process.env.CI === 'true';
const OUT = join(process.cwd(), 'out/e2e');
const TUM_DIR = join(process.cwd(), '../shared/data/tum-fr3-cabinet');
/** A small camera for checks against the memory (the model's field of view). */
const K_SMALL = modelIntrinsics(160, 90);

let server: RunningServer;
let browser: Browser;

interface PageState {
  framesReceived: number;
  framesDrawn: number;
  framesLate: boolean;
  camera?: CameraState;
  joined?: { intrinsics: { fx: number; fy: number; width: number; height: number } };
  mirror: { chunks: number; points: number; batches: number; visibleRegions: number };
  errors: string[];
}
const pageState = (page: Page): Promise<PageState> =>
  page.evaluate(() => {
    const s = (window as unknown as { spatia: PageState }).spatia;
    return JSON.parse(JSON.stringify(s)) as PageState;
  });

/** Waits until the page drew a few frames; on a timeout the error carries the page's log. */
async function framesDrawn(page: Page, logs: readonly string[]): Promise<void> {
  await page
    .waitForFunction(
      () => ((window as unknown as { spatia: { framesDrawn: number } }).spatia?.framesDrawn ?? 0) > 3,
      undefined,
      { timeout: 30_000 },
    )
    .catch((e: unknown) => {
      throw new Error(`no frame drawn: ${(e as Error).message}\n${logs.join('\n')}`);
    });
}

/**
 * Holds an arrow key until the predicted camera turned by `radians` (positive: right): the page
 * watches the camera every animation frame and lets go of the key itself, so the turn does not
 * overshoot by the test's round trips.
 */
async function turnBy(page: Page, radians: number): Promise<void> {
  const key = radians > 0 ? 'ArrowRight' : 'ArrowLeft';
  await page.keyboard.down(key);
  await page.evaluate(
    ([target, code]) =>
      new Promise<void>((resolve) => {
        const s = (window as unknown as { spatia: { camera: { yaw: number } } }).spatia;
        let yaw = s.camera.yaw;
        let turned = 0;
        const step = (): void => {
          // Summed step by step: the controller may wrap yaw.
          turned += Math.atan2(Math.sin(s.camera.yaw - yaw), Math.cos(s.camera.yaw - yaw));
          yaw = s.camera.yaw;
          if (Math.abs(turned) >= Math.abs(target) - 0.02) {
            window.dispatchEvent(new KeyboardEvent('keyup', { code }));
            resolve();
          } else requestAnimationFrame(step);
        };
        requestAnimationFrame(step);
      }),
    [radians, key] as const,
  );
  await page.keyboard.up(key);
}

/** The canvas's own pixels (no HUD on top): RGB, width, height. */
async function canvasRgb(
  page: Page,
): Promise<{ rgb: Uint8Array; width: number; height: number; png: Buffer }> {
  const url = await page.evaluate(() =>
    (document.getElementById('view') as HTMLCanvasElement).toDataURL('image/png'),
  );
  const png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  const img = PNG.sync.read(png);
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) rgb.set(img.data.subarray(i * 4, i * 4 + 3), i * 3);
  return { rgb, width: img.width, height: img.height, png };
}

/** Where an object stands on the ground plane (x, z). */
function horizontal(o: Scene['objects'][number]): [number, number] {
  const at = 'center' in o ? o.center : 'base' in o ? o.base : [0, 0, 0];
  return [at[0]!, at[2]!];
}

/**
 * The server's memory rendered at the page camera's pose, at 1/`s` of the canvas's resolution, and
 * the canvas shrunk to match: the two images an e2e check compares.
 */
function memoryAtCanvas(
  memory: { render: (pose: Pose, k: Intrinsics) => MemoryView },
  st: PageState,
  shot: { rgb: Uint8Array; width: number; height: number },
  s: number,
): { view: MemoryView; small: Uint8Array; w: number; h: number } {
  const k = st.joined!.intrinsics;
  const f = Math.max((shot.width / k.width) * k.fx, (shot.height / k.height) * k.fy) / s;
  const w = Math.floor(shot.width / s);
  const h = Math.floor(shot.height / s);
  const view = memory.render(poseOfCamera(st.camera!), {
    fx: f,
    fy: f,
    cx: (w - 1) / 2,
    cy: (h - 1) / 2,
    width: w,
    height: h,
  });
  return { view, small: shrinkRgb(shot.rgb, shot.width, shot.height, s), w, h };
}

/** Holds W for `ms`. */
async function walk(page: Page, ms: number): Promise<void> {
  await page.keyboard.down('KeyW');
  await page.waitForTimeout(ms);
  await page.keyboard.up('KeyW');
}

function writeRgbPng(path: string, rgb: Uint8Array, w: number, h: number): void {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    png.data.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    png.data[i * 4 + 3] = 255;
  }
  writeFileSync(path, PNG.sync.write(png));
}

describe.runIf(run)('playing in headless Chromium', () => {
  beforeAll(async () => {
    await build({ configFile: join(process.cwd(), 'vite.config.ts'), logLevel: 'warn' });
    server = await startTestServer({ clientDir: join(process.cwd(), 'client/dist') });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('walks with W and turns: frames arrive, the canvas shows them, the HUD counts', async () => {
    const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}?world=room&name=e2e`);
    const state = () =>
      page.evaluate(() => {
        const s = (window as unknown as { spatia: Record<string, unknown> }).spatia;
        return {
          received: s.framesReceived as number,
          drawn: s.framesDrawn as number,
          camera: s.camera as { position: number[]; yaw: number } | undefined,
          errors: s.errors as string[],
        };
      });
    await framesDrawn(page, logs);
    const before = await state();
    await page.click('#view');
    await page.keyboard.down('KeyW');
    await page.keyboard.down('ArrowRight');
    await page.waitForTimeout(1500);
    await page.keyboard.up('ArrowRight');
    await page.keyboard.up('KeyW');
    await page.waitForTimeout(1200);
    const after = await state();
    expect(after.received - before.received).toBeGreaterThan(5);
    expect(after.drawn).toBeGreaterThan(before.drawn);
    expect(after.errors).toEqual([]);
    // The client's own model ran in the browser: onnxruntime-web on the wasm backend filled frame borders.
    const filler = await page.evaluate(
      () =>
        (
          window as unknown as {
            spatia: { holeFiller?: { backend: string; runs: number; lastMs: number; error?: string } };
          }
        ).spatia.holeFiller,
    );
    expect(filler?.error).toBeUndefined();
    expect(filler?.backend).toBe('wasm');
    expect(filler?.runs).toBeGreaterThan(0);
    expect(filler?.lastMs).toBeGreaterThan(0);
    // The player walked and turned right. (How far depends on the display rate: the controller clamps
    // each step to 100 ms, so in slow software WebGL the turn can outpace the walk; only assert both happened.)
    const b0 = before.camera!;
    const a0 = after.camera!;
    expect(Math.hypot(a0.position[0]! - b0.position[0]!, a0.position[2]! - b0.position[2]!)).toBeGreaterThan(
      0.1,
    );
    const turned = ((a0.yaw - b0.yaw + 3 * Math.PI) % (2 * Math.PI)) - Math.PI;
    expect(turned).toBeGreaterThan(0.1);
    // The HUD shows a display frame rate and a generated frame rate.
    const fps = Number(await page.textContent('#hud-fps'));
    const genFps = Number(await page.textContent('#hud-gen-fps'));
    expect(fps).toBeGreaterThan(0);
    expect(genFps).toBeGreaterThan(0);
    expect(await page.textContent('#hud-connection')).toBe('connected');
    // The canvas is not blank: many distinct colours, not just the clear colour.
    mkdirSync(OUT, { recursive: true });
    const shot = await page.screenshot({ path: join(OUT, 'play.png') });
    const png = PNG.sync.read(shot);
    const colours = new Set<number>();
    let dark = 0;
    for (let i = 0; i < png.data.length; i += 4 * 7) {
      const r = png.data[i]!;
      const g = png.data[i + 1]!;
      const b = png.data[i + 2]!;
      colours.add((r >> 3) | ((g >> 3) << 5) | ((b >> 3) << 10));
      if (r < 30 && g < 30 && b < 30) dark++;
    }
    expect(colours.size).toBeGreaterThan(60);
    expect(dark / (png.data.length / 28)).toBeLessThan(0.5);

    // Record what the player sees for a moment (WebCodecs + Mediabunny), then stop.
    await page.keyboard.press('KeyR');
    await page.waitForFunction(
      () => document.getElementById('hud-rec')?.textContent?.includes('REC'),
      undefined,
      {
        timeout: 10_000,
      },
    );
    await page.keyboard.down('ArrowLeft');
    await page.waitForTimeout(2500);
    await page.keyboard.up('ArrowLeft');
    await page.$eval('#record', (b) => (b as HTMLButtonElement).click());
    await page.waitForFunction(
      () => (window as unknown as { spatia: { recording?: unknown } }).spatia.recording,
      undefined,
      {
        timeout: 15_000,
      },
    );
    const rec = await page.evaluate(
      () =>
        (
          window as unknown as {
            spatia: { recording: { bytes: number; mime: string; frames: number; head: number[] } };
          }
        ).spatia.recording,
    );
    // Software WebGL under load can draw as few as ~3 frames/s: a handful of frames proves the pipeline.
    expect(rec.frames).toBeGreaterThanOrEqual(3);
    expect(rec.bytes).toBeGreaterThan(2000);
    const head = Buffer.from(rec.head);
    if (rec.mime === 'video/mp4') expect(head.subarray(4, 8).toString('latin1')).toBe('ftyp');
    else expect(head.readUInt32BE(0)).toBe(0x1a45dfa3); // EBML (WebM)

    // A second page watches this player: it gets frames, sees the join announced on the first page.
    const watcher = await browser.newPage({ viewport: { width: 480, height: 270 } });
    await watcher.goto(`${server.url}?world=room&name=watcher&spectate=e2e`);
    await watcher.waitForFunction(
      () => ((window as unknown as { spatia: { framesReceived: number } }).spatia?.framesReceived ?? 0) > 3,
      undefined,
      { timeout: 30_000 },
    );
    await page.waitForFunction(
      () =>
        (window as unknown as { spatia: { announcements: string[] } }).spatia.announcements.some((a) =>
          a.includes('watcher'),
        ),
      undefined,
      { timeout: 10_000 },
    );
    await watcher.close();
    await page.close();
  }, 120_000);

  it('edits the world: B, a wide brush, one click on the fountain, and the frames after show it gone', async () => {
    // A server of its own: the other tests walk the courtyard as it was.
    const own = await startTestServer({ clientDir: join(process.cwd(), 'client/dist') });
    const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    try {
      await page.goto(`${own.url}?world=courtyard&name=editor`);
      await framesDrawn(page, logs);
      await page.waitForFunction(
        () => (window as unknown as { spatia: PageState }).spatia.mirror.chunks > 100,
        undefined,
        { timeout: 30_000 },
      );
      // The courtyard's ground truth at the player's camera, with and without the fountain's pillar and ball.
      const scene = sceneNamed('courtyard');
      const fountain = (o: Scene['objects'][number]): boolean =>
        'radius' in o && o.radius < 0.5 && Math.hypot(...horizontal(o)) < 0.5;
      const bare: Scene = { ...scene, objects: scene.objects.filter((o) => !fountain(o)) };
      const camera = (await pageState(page)).camera!;
      const pose = poseOfCamera(camera);
      const withIt = renderScene(scene, pose, K_SMALL, { includeEntities: false }).rgb;
      const without = renderScene(bare, pose, K_SMALL, { includeEntities: false }).rgb;
      // Where the fountain is in view: the pixels the two differ in.
      const where = new Uint8Array(K_SMALL.width * K_SMALL.height);
      for (let p = 0; p < where.length; p++)
        if (
          Math.abs(withIt[p * 3]! - without[p * 3]!) + Math.abs(withIt[p * 3 + 2]! - without[p * 3 + 2]!) >
          40
        )
          where[p] = 1;
      expect(where.reduce((a, b) => a + b, 0)).toBeGreaterThan(150);
      /** Mean absolute difference over the fountain's pixels of the canvas (shrunk to K_SMALL) and an image. */
      const meanDiff = (shot: Uint8Array, ref: Uint8Array): number => {
        let sum = 0;
        let n = 0;
        for (let p = 0; p < where.length; p++)
          if (where[p])
            for (let c = 0; c < 3; c++) {
              sum += Math.abs(shot[p * 3 + c]! - ref[p * 3 + c]!);
              n++;
            }
        return sum / n;
      };
      const shrunk = async (): Promise<Uint8Array> => {
        const shot = await canvasRgb(page);
        return shrinkRgb(shot.rgb, shot.width, shot.height, shot.width / K_SMALL.width);
      };
      const before = await shrunk();
      mkdirSync(OUT, { recursive: true });
      // The canvas shows the pillar and its ball where the ground truth has them.
      expect(meanDiff(before, withIt)).toBeLessThan(15);

      // Edit mode, the brush widened to 1.4 m, one click on the middle of the view (the fountain's pillar):
      // the pillar and its ball go, the basin (2.2 m out) stays.
      await page.keyboard.press('KeyB');
      for (let i = 0; i < 7; i++) await page.keyboard.press('BracketRight');
      await page.mouse.move(480, 270);
      await page.waitForFunction(
        () =>
          (window as unknown as { spatia: { edit: { cursor?: number[] } } }).spatia.edit.cursor !== undefined,
      );
      await page.mouse.down();
      await page.mouse.up();
      await page
        .waitForFunction(
          () => (window as unknown as { spatia: { edit: { applied: number } } }).spatia.edit.applied === 1,
          undefined,
          { timeout: 10_000 },
        )
        .catch(async (e: unknown) => {
          const edit = await page.evaluate(() =>
            JSON.stringify((window as unknown as { spatia: { edit: unknown } }).spatia.edit),
          );
          throw new Error(`no edit applied: ${(e as Error).message}\n${edit}\n${logs.join('\n')}`);
        });
      const world = own.worlds.get('courtyard')!;
      let left = 0;
      world.memory.forEachVoxel((v) => {
        if (Math.hypot(v.x, v.z) < 0.3 && v.y > 0.6 && v.y < 2.1) left++;
      });
      expect(left).toBe(0);
      // The frames generated after the edit: drawn again, and the fountain is gone from them.
      const received = (await pageState(page)).framesReceived;
      await page.waitForFunction(
        (n) => {
          const s = (window as unknown as { spatia: PageState }).spatia;
          return s.framesReceived > n + 5 && !s.framesLate;
        },
        received,
        { timeout: 30_000 },
      );
      const after = await shrunk();
      mkdirSync(OUT, { recursive: true });
      writeRgbPng(join(OUT, 'edit-before.png'), before, K_SMALL.width, K_SMALL.height);
      writeRgbPng(join(OUT, 'edit-after.png'), after, K_SMALL.width, K_SMALL.height);
      // Gone: what shows there now is what the model put behind them (it never saw the wall there).
      expect(meanDiff(after, withIt)).toBeGreaterThan(40);
      const st = await page.evaluate(() => {
        const s = (
          window as unknown as { spatia: { edits: unknown[]; edit: { refused: string[] }; errors: string[] } }
        ).spatia;
        return { edits: s.edits, refused: s.edit.refused, errors: s.errors };
      });
      expect(st.edits).toMatchObject([{ action: 'apply', author: 'editor', op: 'erase' }]);
      expect(st.refused).toEqual([]);
      expect(st.errors).toEqual([]);
    } finally {
      await page.close();
      await own.close();
    }
  }, 120_000);

  it('holds the world: after a walk out and back, with generation stopped, a 180° turn and back shows the memory', async () => {
    const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
    const logs: string[] = [];
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}?world=courtyard&name=walker`);
    await framesDrawn(page, logs);
    await page.click('#view');
    // Out, turn round, back: the memory now holds both directions.
    await walk(page, 2500);
    await turnBy(page, Math.PI);
    await page.waitForTimeout(1500);
    await walk(page, 2500);
    await page.waitForTimeout(1500);
    server.pauseGeneration(true);
    try {
      await page.waitForFunction(
        () => (window as unknown as { spatia: { framesLate: boolean } }).spatia.framesLate,
        undefined,
        { timeout: 10_000 },
      );
      expect(await page.textContent('#hud-late')).toMatch(/frames late/);
      const received = (await pageState(page)).framesReceived;
      const world = server.worlds.get('courtyard')!;
      mkdirSync(OUT, { recursive: true });
      for (const [name, turn] of [
        ['mirror-turned', Math.PI],
        ['mirror-back', -Math.PI],
      ] as const) {
        await turnBy(page, turn);
        await page.waitForTimeout(800);
        const st = await pageState(page);
        const shot = await canvasRgb(page);
        writeFileSync(join(OUT, `${name}.png`), shot.png);
        // Drawn: not the clear colour (see client/src/worldView.ts) over the whole world view.
        let clear = 0;
        for (let i = 0; i < shot.rgb.length; i += 3)
          if (
            Math.abs(shot.rgb[i]! - 18) <= 2 &&
            Math.abs(shot.rgb[i + 1]! - 18) <= 2 &&
            Math.abs(shot.rgb[i + 2]! - 20) <= 2
          )
            clear++;
        const drawn = 1 - clear / (shot.width * shot.height);
        // The server's own memory render at that pose, at a quarter of the canvas's resolution.
        const { view, small, w, h } = memoryAtCanvas(world.memory, st, shot, 4);
        writeRgbPng(join(OUT, `${name}-memory.png`), view.rgb, w, h);
        const covered = view.coverage.reduce((a, b) => a + b, 0) / (w * h);
        const db = psnr(small, view.rgb, view.coverage);
        console.log(
          `${name}: yaw ${st.camera!.yaw.toFixed(2)}, drawn ${(drawn * 100).toFixed(2)} %, memory covers ${(covered * 100).toFixed(1)} %, PSNR ${db.toFixed(2)} dB over covered pixels, ${st.mirror.chunks} chunks held, ${st.mirror.visibleRegions} regions drawn`,
        );
        expect(covered).toBeGreaterThan(0.5);
        expect(drawn).toBeGreaterThanOrEqual(0.98);
        expect(db).toBeGreaterThanOrEqual(22);
        expect(st.framesLate).toBe(true);
      }
      // No frame came while the server stood still: what the canvas showed was the mirror.
      expect((await pageState(page)).framesReceived).toBe(received);
      expect((await pageState(page)).errors).toEqual([]);
      expect(logs).toEqual([]);
    } finally {
      server.pauseGeneration(false);
      await page.close();
    }
  }, 120_000);

  it.runIf(existsSync(TUM_DIR))(
    'walks a real captured place: the TUM cabinet imported as a world',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'spatia-e2e-real-'));
      const storePath = join(dir, 'w.sqlite');
      await promisify(execFile)(join(process.cwd(), 'node_modules/.bin/tsx'), [
        'server/tools/worldTool.ts',
        'import-sequence',
        TUM_DIR,
        '--format',
        'tum',
        '--every',
        '4',
        '--world',
        'cabinet',
        '--store',
        storePath,
      ]);
      const store = new WorldStore(storePath);
      const real = await startTestServer({ clientDir: join(process.cwd(), 'client/dist'), store });
      const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
      try {
        await page.goto(`${real.url}?world=cabinet&name=visitor`);
        await framesDrawn(page, []);
        // The first frame is the captured place seen from the capture's first camera: the memory covers most of it.
        const world = real.worlds.get('cabinet')!;
        const st0 = await pageState(page);
        // The player appears where the capture's first camera stood, looking ~40° down at the cabinet as it did.
        expect(st0.camera!.pitch).toBeLessThan(-0.5);
        const view = world.memory.render(poseOfCamera(st0.camera!), K_SMALL);
        expect(view.coverage.reduce((a, b) => a + b, 0) / view.coverage.length).toBeGreaterThan(0.8);
        await page.click('#view');
        await walk(page, 1500);
        await turnBy(page, 0.6);
        await page.waitForTimeout(1000);
        const st = await pageState(page);
        expect(st.errors).toEqual([]);
        expect(st.framesReceived).toBeGreaterThan(5);
        expect(st.mirror.chunks).toBeGreaterThan(50);
        const shot = await canvasRgb(page);
        mkdirSync(OUT, { recursive: true });
        writeFileSync(join(OUT, 'real-cabinet.png'), shot.png);
        const colours = new Set<number>();
        for (let i = 0; i < shot.rgb.length; i += 3 * 7)
          colours.add((shot.rgb[i]! >> 3) | ((shot.rgb[i + 1]! >> 3) << 5) | ((shot.rgb[i + 2]! >> 3) << 10));
        expect(colours.size).toBeGreaterThan(60);
      } finally {
        await page.close();
        await real.close();
        store.close();
      }
    },
    120_000,
  );
  it('plays the ONNX model: after a walk and a turn the view still resembles the memory at its pose', async () => {
    const model = await OnnxModel.load(DEFAULT_ONNX_MODEL, { provider: 'cpu' });
    const own = await startTestServer({ model, clientDir: join(process.cwd(), 'client/dist') });
    const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
    const logs: string[] = [];
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    try {
      await page.goto(`${own.url}?world=room&name=onnx`);
      await framesDrawn(page, logs);
      await page.click('#view');
      await walk(page, 1200);
      await turnBy(page, 0.5);
      // Standing still: the latest frames are generated at this pose.
      await page.waitForTimeout(2500);
      const st = await pageState(page);
      const shot = await canvasRgb(page);
      mkdirSync(OUT, { recursive: true });
      writeFileSync(join(OUT, 'onnx-room.png'), shot.png);
      const world = own.worlds.get('room')!;
      const { view, small } = memoryAtCanvas(world.memory, st, shot, 4);
      const db = psnr(small, view.rgb, view.coverage);
      let outside = 0;
      let voxels = 0;
      world.memory.forEachVoxel((v) => {
        voxels++;
        if (Math.abs(v.x) > 4.4 || Math.abs(v.z) > 3.4 || v.y < -0.4 || v.y > 3.4) outside++;
      });
      console.log(
        `onnx in the game: ${st.framesReceived} frames, PSNR ${db.toFixed(2)} dB against the memory at the camera's pose; ${outside} of ${voxels} voxels outside the room`,
      );
      expect(st.framesReceived).toBeGreaterThan(5);
      expect(st.errors).toEqual([]);
      // Measured 30.9 dB (20.0 dB when the sampler redrew the memory's pixels: the issue asks ≥ 20).
      expect(db).toBeGreaterThanOrEqual(25);
      // The memory holds nothing beyond the room: the bundled network's invented depth is noise and
      // its card says so (inventedDepth: false). Measured before: 818 and 2 302 voxels outside.
      expect(outside).toBeLessThanOrEqual(voxels * 0.005);
      expect(logs).toEqual([]);
    } finally {
      await page.close();
      await own.close();
      await model.dispose();
    }
  }, 120_000);
});
