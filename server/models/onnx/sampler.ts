import { mulberry32 } from '../../../shared/math/random.ts';

/** The velocity field the denoiser predicts: v(x_t, t), same shape as x. */
export type VelocityField = (x: Float32Array, t: number) => Promise<Float32Array>;

/**
 * Flow matching's sampler: integrates dx/dt = v(x, t) from t = 0 (noise) to t = 1 (data) with
 * `steps` explicit Euler steps at t = 0, 1/steps, …, (steps − 1)/steps. Returns a new array.
 */
export async function eulerSample(
  x0: Float32Array,
  steps: number,
  velocity: VelocityField,
): Promise<Float32Array> {
  if (!Number.isInteger(steps) || steps < 1)
    throw new RangeError(`steps must be an integer ≥ 1, got ${steps}`);
  const x = x0.slice();
  const dt = 1 / steps;
  for (let i = 0; i < steps; i++) {
    const v = await velocity(x, i * dt);
    if (v.length !== x.length) throw new RangeError(`velocity has ${v.length} values, x has ${x.length}`);
    for (let j = 0; j < x.length; j++) x[j]! += v[j]! * dt;
  }
  return x;
}

/** Standard normal noise from a 32-bit seed (Box–Muller over mulberry32): the same seed, the same noise. */
export function gaussianNoise(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
