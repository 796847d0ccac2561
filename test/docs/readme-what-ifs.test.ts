import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { buildReport, localClock } from '../../src/report/index.js';
import { loadScenario, runReplay } from '../../src/sim/index.js';

/** The README's what-if table: what the model says, held to what the model says. */
describe('README what-if table', () => {
  it('every row is what the model gives for that override (seed 1)', async () => {
    const md = await readFile('README.md', 'utf8');
    const table = md.slice(md.indexOf('| what-if (`--set assumptions.…`)'));
    const rows = table.split('\n').slice(2).filter((l) => l.startsWith('| '));
    expect(rows.length).toBe(4);
    for (const row of rows) {
      const [what, onAir, offered, peak, facts] = row.split('|').slice(1, -1).map((c) => c.trim());
      const set = what!.startsWith('none') ? [] : [`assumptions.${/`([^`]+)`/.exec(what!)![1]}`];
      const r = await runReplay({ scenario: await loadScenario('scenarios/x-spaces-2024-08-12.yaml', set), seed: 1, speed: 'max', clock: manualClock(0) });
      const report = buildReport(r);
      expect(onAir, what).toBe(localClock(r.liveAt!, report.timeZone));
      expect(offered, what).toBe(`${(Math.max(...r.series.map((s) => s.offered)) / 1000).toFixed(1)}k/s`);
      expect(peak, what).toBe(`${(report.peakListeners / 1e6).toFixed(2)}M`);
      expect(facts, what).toBe(`${report.expectations.filter((e) => e.pass).length}/${report.expectations.length}`);
    }
  });
});
