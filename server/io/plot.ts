import { glyphOf } from './font.ts';
import { encodeRgbPng } from './png.ts';

/**
 * A small line-plot rasteriser for the eval (PSNR per frame): axes, grid, one polyline per series,
 * a legend, and labels in a built-in 5×7 pixel font. Returns PNG bytes.
 */
export interface PlotSeries {
  readonly name: string;
  readonly values: readonly number[];
  readonly color: readonly [number, number, number];
}

export interface PlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly width?: number;
  readonly height?: number;
}

class Canvas {
  readonly rgb: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: readonly number[]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (Math.round(y) * this.width + Math.round(x)) * 3;
    this.rgb[o] = c[0]!;
    this.rgb[o + 1] = c[1]!;
    this.rgb[o + 2] = c[2]!;
  }
  line(x0: number, y0: number, x1: number, y1: number, c: readonly number[], thick = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let i = 0; i <= steps; i++) {
      const x = x0 + ((x1 - x0) * i) / steps;
      const y = y0 + ((y1 - y0) * i) / steps;
      for (let d = 0; d < thick; d++) this.set(x, y + d, c);
    }
  }
  text(x: number, y: number, s: string, c: readonly number[] = [30, 30, 30]): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = glyphOf(ch);
      for (let row = 0; row < 7; row++)
        for (let col = 0; col < 5; col++) if ((g[row]! >> (4 - col)) & 1) this.set(cx + col, y + row, c);
      cx += 6;
    }
  }
}

const niceStep = (span: number): number => {
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
};

export function linePlotPng(series: readonly PlotSeries[], opts: PlotOptions): Buffer {
  const W = opts.width ?? 900;
  const H = opts.height ?? 420;
  const c = new Canvas(W, H);
  const left = 60;
  const right = W - 180;
  const top = 30;
  const bottom = H - 40;
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const maxLen = Math.max(2, ...series.map((s) => s.values.length));
  let lo = all.length ? Math.min(...all) : 0;
  let hi = all.length ? Math.max(...all) : 1;
  if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
  const step = niceStep(hi - lo);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const px = (i: number): number => left + ((right - left) * i) / (maxLen - 1);
  const py = (v: number): number => bottom - ((bottom - top) * (v - lo)) / (hi - lo);
  for (let v = lo; v <= hi + 1e-9; v += step) {
    c.line(left, py(v), right, py(v), [225, 225, 225]);
    c.text(left - 8 - 6 * v.toFixed(0).length, py(v) - 3, v.toFixed(0));
  }
  const xStep = niceStep(maxLen - 1);
  for (let i = 0; i <= maxLen - 1; i += xStep) {
    c.line(px(i), top, px(i), bottom, [235, 235, 235]);
    c.text(px(i) - 3 * String(i).length, bottom + 6, String(i));
  }
  c.line(left, top, left, bottom, [60, 60, 60]);
  c.line(left, bottom, right, bottom, [60, 60, 60]);
  c.text(left, 10, opts.title);
  c.text((left + right) / 2 - 3 * opts.xLabel.length, H - 16, opts.xLabel);
  c.text(4, top - 14, opts.yLabel);
  series.forEach((s, si) => {
    for (let i = 1; i < s.values.length; i++) {
      const a = s.values[i - 1]!;
      const b = s.values[i]!;
      if (Number.isFinite(a) && Number.isFinite(b)) c.line(px(i - 1), py(a), px(i), py(b), s.color, 2);
    }
    const ly = top + 14 * si;
    c.line(right + 12, ly + 3, right + 32, ly + 3, s.color, 2);
    c.text(right + 38, ly, s.name);
  });
  return encodeRgbPng(c.rgb, W, H);
}
