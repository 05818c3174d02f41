/** Seeded hashing and random numbers: one home for every 32-bit mix the project uses. */

/** 32-bit FNV-1a of a string. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Small fast seeded PRNG (mulberry32) in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Unsigned 32-bit hash of an integer grid cell and a seed (not yet finalised: see `cellUnit`). */
export function cellHash(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ Math.imul(seed, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
}

/** `cellHash` finalised to a uniform number in [0, 1). */
export function cellUnit(x: number, y: number, seed: number): number {
  const h = cellHash(x, y, seed);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** A clip's seed from a world's seed, a player's number and the clip's index. */
export function mixSeed(worldSeed: number, player: number, clip: number): number {
  let h = worldSeed ^ Math.imul(player + 1, 0x9e3779b1) ^ Math.imul(clip + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}
