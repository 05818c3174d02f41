/** One benchmark result; the JSON format every Spatia benchmark writes. */
export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly peerName?: string;
  readonly peerValue?: number;
  /** Free text shown in the table only (not part of the JSON contract). */
  readonly note?: string;
}

/** Median wall time of `fn` in milliseconds, after `warmup` untimed calls (JIT warm-up). */
export function medianMs(fn: () => unknown, iterations: number, warmup = Math.min(5, iterations)): number {
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

/** Median of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const fmt = (x: number | undefined): string =>
  x === undefined
    ? ''
    : Math.abs(x) >= 100
      ? x.toFixed(0)
      : Math.abs(x) >= 10
        ? x.toFixed(1)
        : Math.abs(x) >= 1 || x === 0
          ? x.toFixed(2)
          : x.toPrecision(3);

/** Lower is better for these units; the ratio column says how many times better than the peer we are. */
const LOWER_IS_BETTER = new Set(['ms', 'bytes', 'm']);

/** A fixed-width table a person can compare run to run. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => {
    let ratio = '';
    if (r.peerValue !== undefined && r.value > 0 && r.peerValue > 0) {
      const x = LOWER_IS_BETTER.has(r.unit) ? r.peerValue / r.value : r.value / r.peerValue;
      ratio = `${x.toFixed(2)}×`;
    }
    return [r.name, fmt(r.value), r.unit, r.peerName ?? '', fmt(r.peerValue), ratio, r.note ?? ''];
  });
  const header = ['benchmark', 'value', 'unit', 'peer', 'peer value', 'vs peer', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const right = new Set([1, 4, 5]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
