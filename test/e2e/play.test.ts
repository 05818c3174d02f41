import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../server/net/gameServer.ts';
import { startTestServer } from '../helpers/server.ts';

/**
 * End to end: the built Babylon.js client in Debian's Chromium (headless, software WebGL), the
 * real server over loopback. Runs wherever /usr/bin/chromium exists, and always in CI.
 */
const CHROMIUM = '/usr/bin/chromium';
const run = existsSync(CHROMIUM) || process.env.CI === 'true';
const OUT = join(process.cwd(), 'out/e2e');

let server: RunningServer;
let browser: Browser;

describe.runIf(run)('playing in headless Chromium', () => {
  beforeAll(async () => {
    await build({ configFile: join(process.cwd(), 'vite.config.ts'), logLevel: 'warn' });
    server = await startTestServer({ clientDir: join(process.cwd(), 'client/dist') });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader',
        '--ignore-gpu-blocklist',
      ],
    });
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
    await page
      .waitForFunction(
        () => ((window as unknown as { spatia: { framesDrawn: number } }).spatia?.framesDrawn ?? 0) > 3,
        undefined,
        { timeout: 30_000 },
      )
      .catch((e: unknown) => {
        throw new Error(`no frame drawn: ${(e as Error).message}\n${logs.join('\n')}`);
      });
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
});
