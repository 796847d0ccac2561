import hdr from 'hdr-histogram-js';
import type { TimelineFact, TimelineMeta } from '../server/index.js';
import type { Scenario } from '../sim/index.js';

const millions = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(n % 1e6 ? 2 : 1)}M` : `${Math.round(n / 1e3)}k`);

/** What the dashboard spans and the scenario's facts as points and bands (the model never reads them). */
export function timelineMeta(scenario: Scenario, speed: number | 'max'): TimelineMeta {
  const facts: TimelineFact[] = scenario.expect.flatMap((x): TimelineFact[] => {
    // the dashboard draws the whole space's series: only facts of the first room (no `room`) in the shapes it can draw
    if (x.kind !== 'recordingAvailable' && x.room !== undefined) return [];
    switch (x.kind) {
      case 'liveAt':
        return [{ kind: 'liveAt', label: `on air ${x.between[0]}–${x.between[1]}`, from: scenario.at(x.between[0]), to: scenario.at(x.between[1]) }];
      case 'listenersAt':
        return x.min !== undefined && x.max === undefined ? [{ kind: 'listenersAt', label: `≥ ${millions(x.min)} by ${x.at}`, at: scenario.at(x.at), min: x.min }] : [];
      case 'peakListeners':
        return x.min !== undefined && x.max !== undefined && x.from === undefined && x.to === undefined ? [{ kind: 'peakListeners', label: `peak ${millions(x.min)}–${millions(x.max)}`, min: x.min, max: x.max }] : [];
      case 'failureShare':
        return x.min !== undefined && x.max === undefined && x.from !== undefined && x.to !== undefined ? [{ kind: 'failureShare', label: `> ${Math.round(x.min * 100)}% fail ${x.from}–${x.to}`, from: scenario.at(x.from), to: scenario.at(x.to), min: x.min }] : [];
      default:
        return [];
    }
  });
  return { scenario: scenario.event.name, timeZone: scenario.event.timeZone, from: scenario.replayFromMs, to: scenario.replayUntilMs, scheduledStart: scenario.scheduledStartMs, speed, facts };
}

/**
 * Audio delay percentiles over a window: each call reads what a cumulative HDR histogram (µs) gained
 * since the previous call, in ms. Null while the window saw no audio.
 */
export function delayWindow(read: () => hdr.Histogram | null): () => { p50: number; p99: number } | null {
  const seen = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const win = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  return () => {
    const h = read();
    if (!h || h.totalCount === seen.totalCount) return null;
    win.reset();
    win.add(h);
    win.subtract(seen);
    seen.reset();
    seen.add(h);
    return { p50: win.getValueAtPercentile(50) / 1000, p99: win.getValueAtPercentile(99) / 1000 };
  };
}
