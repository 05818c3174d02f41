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
  known?: KnownValues,
): Promise<Float32Array> {
  if (!Number.isInteger(steps) || steps < 1)
    throw new RangeError(`steps must be an integer ≥ 1, got ${steps}`);
  if (known && (known.values.length !== x0.length || known.weight.length !== x0.length))
    throw new RangeError(`known values and weights must have ${x0.length} entries`);
  const x = x0.slice();
  const dt = 1 / steps;
  for (let i = 0; i < steps; i++) {
    const v = await velocity(x, i * dt);
    if (v.length !== x.length) throw new RangeError(`velocity has ${v.length} values, x has ${x.length}`);
    for (let j = 0; j < x.length; j++) x[j]! += v[j]! * dt;
    if (known) keepKnown(x, x0, known, (i + 1) * dt);
  }
  return x;
}

/**
 * Values the sample must keep (inpainting): where `weight` is 1 the result is `values`, where 0 it
 * is the network's, in between a blend.
 */
export interface KnownValues {
  readonly values: Float32Array;
  readonly weight: Float32Array;
}

/**
 * After each step, the known entries are put back on the flow's straight path from their own noise
 * to their value, x_t = (1 − t)·x0 + t·known, blended by weight, as inpainting samplers keep known
 * pixels (RePaint, for diffusion): the network then only has to fill what is unknown, and sees the
 * known part at the noise level it was trained for.
 */
function keepKnown(x: Float32Array, x0: Float32Array, known: KnownValues, t: number): void {
  const { values, weight } = known;
  for (let j = 0; j < x.length; j++) {
    const w = weight[j]!;
    if (w === 0) continue;
    const onPath = (1 - t) * x0[j]! + t * values[j]!;
    x[j] = x[j]! + w * (onPath - x[j]!);
  }
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
