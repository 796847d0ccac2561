/**
 * A small seeded PRNG (SplitMix32-style mixing over a 32-bit counter). Deterministic across
 * platforms; fork(name) derives an independent stream so adding a consumer does not shift others.
 */
export interface Rng {
  next: () => number;
  fork(name: string): Rng;
}

function hash(str: string, seed: number): number {
  let h = seed ^ 0x9e3779b9;
  for (let i = 0; i < str.length; i++) h = Math.imul(h ^ str.charCodeAt(i), 0x85ebca6b);
  return h >>> 0;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
  return { next, fork: (name) => createRng(hash(name, seed)) };
}
