import type { Scenario } from './scenario.js';

/** The scenario's curves over simulated time: keyframes, and when real clients arrive along the demand. */

/** Piecewise-linear interpolation over keyframes; flat before the first and after the last. */
export function interpolate(frames: readonly { t: number; v: number }[], t: number): number {
  const first = frames[0];
  if (!first) return 0;
  if (t <= first.t) return first.v;
  for (let i = 1; i < frames.length; i++) {
    const b = frames[i]!;
    if (t <= b.t) {
      const a = frames[i - 1]!;
      return a.v + ((b.v - a.v) * (t - a.t)) / (b.t - a.t);
    }
  }
  return frames.at(-1)!.v;
}

/**
 * When n real clients should arrive, in simulated ms: the quantiles of the scenario's demand curve, so
 * real clients come when the modelled crowd comes (most of them into the surge at the scheduled start).
 */
export function demandQuantiles(scenario: Scenario, n: number): number[] {
  const frames = scenario.assumptions.demand.keyframes.map((k) => ({ t: scenario.at(k.at), v: k.perSecond }));
  const cum: number[] = [];
  let total = 0;
  for (let t = scenario.replayFromMs; t < scenario.replayUntilMs; t += 1000) {
    total += interpolate(frames, t);
    cum.push(total);
  }
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < n; i++) {
    const target = ((i + 0.5) / n) * total;
    while (j < cum.length - 1 && cum[j]! < target) j++;
    out.push(scenario.replayFromMs + j * 1000);
  }
  return out;
}
