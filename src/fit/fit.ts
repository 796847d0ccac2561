import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { parseDocument } from 'yaml';
import { buildReport, splitErrors, type Expectation, type Report } from '../report/index.js';
import { createRng, parseScenario, replayModel, ScenarioError, type Scenario } from '../sim/index.js';

/**
 * `stampede fit`: tunes named assumptions to a scenario's facts. The facts' distances (see
 * Expectation.error: 0 on target, 1 at the edge of the accepted range) are the residuals of a bounded
 * least-squares problem, solved by Levenberg–Marquardt (ml-levenberg-marquardt) over the varied
 * assumptions scaled to [0, 1], with a central-difference Jacobian. Held-out facts are scored, never
 * fitted. Several starts — the scenario's own values first, then seeded random points — make it less
 * likely to stop in a local minimum; the best start wins, and the same seed gives the same fit.
 */

export interface Vary {
  path: string;
  lo: number;
  hi: number;
}

/** `path=lo..hi`, e.g. `assumptions.demand.scale=0.2..1.5`. */
export function parseVary(spec: string): Vary {
  const m = /^([^=]+)=(-?[\d.]+(?:e-?\d+)?)\.\.(-?[\d.]+(?:e-?\d+)?)$/.exec(spec.trim());
  const lo = m ? Number(m[2]) : NaN;
  const hi = m ? Number(m[3]) : NaN;
  if (!m || !Number.isFinite(lo) || !Number.isFinite(hi) || !(hi > lo)) {
    throw new ScenarioError('--vary', [{ path: spec, message: 'expected path=lo..hi with lo < hi, e.g. assumptions.demand.scale=0.2..1.5' }]);
  }
  return { path: m[1]!.trim(), lo, hi };
}

export interface FitOptions {
  /** The scenario file's text and name (YAML or JSON by extension). */
  text: string;
  file: string;
  /** Overrides applied before fitting, as with `replay --set`; they are kept in the written file. */
  set?: string[];
  vary: Vary[];
  seed: number;
  /** Starting points: the scenario's own values, then seeded random ones. */
  starts?: number;
  maxIterations?: number;
  /** Levenberg–Marquardt's starting damping: larger takes smaller first steps. */
  damping?: number;
}

export interface Sensitivity {
  fact: string;
  holdOut: boolean;
  /** Change in the fact's distance when each assumption moves up by a tenth of its range (down at the top). */
  perAssumption: { path: string; errorChange: number }[];
}

export interface FitResult {
  vary: (Vary & { start: number; value: number })[];
  before: Report;
  after: Report;
  errorsBefore: { fitted: number; heldOut: number | null };
  errorsAfter: { fitted: number; heldOut: number | null };
  sensitivity: Sensitivity[];
  evaluations: number;
  iterations: number;
  /** The fitted scenario as a file, with `fitted:` recording what was varied and how well it fits. */
  text: string;
}

/** Four significant digits: what goes into the written file, and what the final report replays. */
export function roundValue(v: number): number {
  return Number(v.toPrecision(4));
}

function currentValue(text: string, file: string, set: string[], path: string): number | null {
  const s = parseScenario(text, file, set) as unknown as Record<string, unknown>;
  let cur: unknown = s;
  for (const k of path.split('.').flatMap((p) => p.split(/\[(\d+)\]/).filter(Boolean))) cur = (cur as Record<string, unknown> | undefined)?.[k];
  return typeof cur === 'number' ? cur : null;
}

export function fitScenario(o: FitOptions): FitResult {
  const set = o.set ?? [];
  const base = parseScenario(o.text, o.file, set);
  const fitted = base.expect.filter((x) => !x.holdOut);
  if (o.vary.length === 0) throw new ScenarioError(o.file, [{ path: '--vary', message: 'name at least one assumption to vary' }]);
  if (fitted.length === 0) throw new ScenarioError(o.file, [{ path: 'expect', message: 'no facts to fit (every fact is held out)' }]);
  for (const v of o.vary) {
    if (!v.path.startsWith('assumptions.')) throw new ScenarioError(o.file, [{ path: v.path, message: 'only assumptions can be varied, never facts or the event' }]);
    if (currentValue(o.text, o.file, set, v.path) === null) throw new ScenarioError(o.file, [{ path: v.path, message: 'not a number in this scenario' }]);
  }
  const span = o.vary.map((v) => v.hi - v.lo);
  const toValues = (x: ArrayLike<number>): number[] => o.vary.map((v, i) => v.lo + Math.min(1, Math.max(0, x[i]!)) * span[i]!);
  const scenarioAt = (values: number[]): Scenario => parseScenario(o.text, o.file, [...set, ...o.vary.map((v, i) => `${v.path}=${values[i]}`)]);
  let evaluations = 0;
  const cache = new Map<string, Report>();
  const reportAt = (values: number[]): Report => {
    const key = values.join(',');
    let r = cache.get(key);
    if (!r) {
      evaluations++;
      r = buildReport(replayModel(scenarioAt(values), o.seed));
      if (cache.size > 5000) cache.clear();
      cache.set(key, r);
    }
    return r;
  };
  const residuals = (r: Report): number[] => r.expectations.filter((e) => !e.holdOut).map((e) => e.error);
  const cost = (x: number[]): number => residuals(reportAt(toValues(x))).reduce((a, e) => a + e * e, 0);

  const rng = createRng(o.seed).fork('fit');
  const starts = Math.max(1, o.starts ?? 4);
  const own = o.vary.map((v, i) => Math.min(1, Math.max(0, (currentValue(o.text, o.file, set, v.path)! - v.lo) / span[i]!)));
  const points = [own, ...Array.from({ length: starts - 1 }, () => o.vary.map(() => rng.next()))];
  const indices = fitted.map((_, i) => i);
  let best: { x: number[]; cost: number; iterations: number } | null = null;
  let iterations = 0;
  for (const p of points) {
    const run = levenbergMarquardt(
      { x: indices, y: indices.map(() => 0) },
      (x) => {
        const res = residuals(reportAt(toValues(x)));
        return (i) => res[i]!;
      },
      {
        initialValues: p,
        minValues: o.vary.map(() => 0),
        maxValues: o.vary.map(() => 1),
        // a step of 2 % of each range: wide enough to see past the model's one-second and one-minute steps
        gradientDifference: 0.02,
        centralDifference: true,
        damping: o.damping ?? 10,
        maxIterations: o.maxIterations ?? 40,
        // stop once the squared distances add up to less than this: every fact within a few hundredths of its target
        errorTolerance: 1e-3,
      },
    );
    iterations += run.iterations;
    const c = cost(run.parameterValues);
    if (!best || c < best.cost - 1e-12) best = { x: run.parameterValues, cost: c, iterations: run.iterations };
  }
  const values = toValues(best!.x).map(roundValue);
  const startValues = toValues(own);
  const before = buildReport(replayModel(base, o.seed));
  const after = buildReport(replayModel(scenarioAt(values), o.seed));

  const sensitivity: Sensitivity[] = after.expectations.map((e: Expectation, f) => ({
    fact: e.name,
    holdOut: !!e.holdOut,
    perAssumption: o.vary.map((v, i) => {
      const step = span[i]! / 10;
      const moved = values.slice();
      moved[i] = values[i]! + step <= v.hi ? values[i]! + step : values[i]! - step;
      const sign = moved[i]! > values[i]! ? 1 : -1;
      const r = reportAt(moved);
      return { path: v.path, errorChange: Math.round(sign * (r.expectations[f]!.error - e.error) * 1000) / 1000 };
    }),
  }));

  const beforeSplit = splitErrors(before.expectations);
  const afterSplit = splitErrors(after.expectations);
  return {
    vary: o.vary.map((v, i) => ({ ...v, start: roundValue(startValues[i]!), value: values[i]! })),
    before,
    after,
    errorsBefore: beforeSplit,
    errorsAfter: afterSplit,
    sensitivity,
    evaluations,
    iterations,
    text: writeFitted(o, values, after, afterSplit),
  };
}

function pathKeys(path: string): (string | number)[] {
  return path.split('.').flatMap((k) => k.split(/\[(\d+)\]/).filter(Boolean)).map((k) => (/^\d+$/.test(k) ? Number(k) : k));
}

/** The scenario file with the overrides and fitted values written in, comments kept, and a `fitted:` record. */
function writeFitted(o: FitOptions, values: number[], after: Report, split: { fitted: number; heldOut: number | null }): string {
  const isJson = o.file.endsWith('.json');
  const doc = parseDocument(o.text);
  for (const s of o.set ?? []) {
    const eq = s.indexOf('=');
    doc.setIn(pathKeys(s.slice(0, eq).trim()), parseDocument(s.slice(eq + 1)).toJS());
  }
  o.vary.forEach((v, i) => doc.setIn(pathKeys(v.path), values[i]));
  const met = after.expectations.filter((e) => e.pass).length;
  doc.set('fitted', {
    seed: o.seed,
    vary: o.vary.map((v, i) => ({ path: v.path, lo: v.lo, hi: v.hi, value: values[i] })),
    fittedError: split.fitted,
    heldOutError: split.heldOut,
    factsMet: `${met}/${after.expectations.length}`,
  });
  return isJson ? `${JSON.stringify(doc.toJS(), null, 2)}\n` : doc.toString();
}
