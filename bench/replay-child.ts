import { manualClock } from '../src/clock.js';
import { loadScenario, runReplay } from '../src/sim/index.js';
import { answer } from './lib/proc.js';

/** One replay at --speed max in a fresh process, so its time and peak memory are its own. */
answer({
  run: async (m) => {
    const scale = Number(m.scale ?? 1);
    // A crowd ×scale on a platform ×scale: demand and join capacity grow together, so the night keeps its
    // shape and the peak grows with the scale (a bigger crowd on the same capacity would be a different night).
    const base = await loadScenario('scenarios/x-spaces-2024-08-12.yaml');
    const capacity = base.assumptions.capacity.keyframes.map((k, i) => `assumptions.capacity.keyframes[${i}].joinsPerSecond=${k.joinsPerSecond * scale}`);
    const scenario = await loadScenario('scenarios/x-spaces-2024-08-12.yaml', [`assumptions.demand.scale=${scale}`, ...capacity]);
    const t0 = performance.now();
    const r = await runReplay({ scenario, seed: 1, speed: 'max', clock: manualClock(0) });
    const ms = Math.round(performance.now() - t0);
    return { ms, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), peak: Math.round(r.peakListeners) };
  },
});
