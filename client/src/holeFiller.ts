import * as ort from 'onnxruntime-web/wasm';

/**
 * The client's own model (onnxruntime-web, wasm backend): extends each server frame by a border
 * it has never seen and fills it (assets/models/hole-filler.onnx). The result is drawn behind the
 * reprojected frame, so turning between server frames shows plausible edges, not black.
 */
export const FILL_W = 160;
export const FILL_H = 90;
/** The frame occupies the central 128×72 of the 160×90 fill image (a 1.25× wider field of view). */
export const INNER_W = 128;
const INNER_H = 72;

export interface HoleFillerStats {
  backend: string;
  runs: number;
  lastMs: number;
  error?: string;
}

export class HoleFiller {
  private session: ort.InferenceSession | undefined;
  private busy = false;
  private readonly canvas = new OffscreenCanvas(FILL_W, FILL_H);
  private readonly ctx = this.canvas.getContext('2d', { willReadFrequently: true })!;
  readonly stats: HoleFillerStats = { backend: 'wasm', runs: 0, lastMs: 0 };

  async load(url: string): Promise<void> {
    ort.env.wasm.numThreads = 1; // no cross-origin isolation needed
    try {
      this.session = await ort.InferenceSession.create(url, { executionProviders: ['wasm'] });
    } catch (e) {
      this.stats.error = (e as Error).message;
      throw e;
    }
  }

  /** Fills the border of `image`; resolves with RGBA pixels (FILL_W×FILL_H), or undefined while busy. */
  async fill(image: ImageBitmap): Promise<ImageData | undefined> {
    if (!this.session || this.busy) return undefined;
    this.busy = true;
    const t0 = performance.now();
    try {
      const ox = (FILL_W - INNER_W) / 2;
      const oy = (FILL_H - INNER_H) / 2;
      this.ctx.clearRect(0, 0, FILL_W, FILL_H);
      this.ctx.drawImage(image, ox, oy, INNER_W, INNER_H);
      const px = this.ctx.getImageData(0, 0, FILL_W, FILL_H);
      const n = FILL_W * FILL_H;
      const input = new Float32Array(4 * n);
      for (let y = 0; y < FILL_H; y++)
        for (let x = 0; x < FILL_W; x++) {
          const p = y * FILL_W + x;
          const known = x >= ox && x < ox + INNER_W && y >= oy && y < oy + INNER_H;
          for (let c = 0; c < 3; c++) input[c * n + p] = known ? px.data[p * 4 + c]! / 255 : 0;
          input[3 * n + p] = known ? 0 : 1;
        }
      const out = await this.session.run({ image: new ort.Tensor('float32', input, [1, 4, FILL_H, FILL_W]) });
      const filled = out.filled!.data as Float32Array;
      const result = new ImageData(FILL_W, FILL_H);
      for (let p = 0; p < n; p++) {
        for (let c = 0; c < 3; c++)
          result.data[p * 4 + c] = Math.round(Math.min(1, Math.max(0, filled[c * n + p]!)) * 255);
        result.data[p * 4 + 3] = 255;
      }
      this.stats.runs++;
      this.stats.lastMs = performance.now() - t0;
      return result;
    } finally {
      this.busy = false;
    }
  }
}
