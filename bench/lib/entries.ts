import { estimate, pairedRatio, ratio, verdict, type Estimate } from './stats.js';

/** One line of the results: a figure, its baseline (or a fixed target), the ratio, each with its interval. */
export interface Entry {
  part: string;
  name: string;
  unit: string;
  better: 'higher' | 'lower';
  figure: number;
  figureCI: [number, number];
  baselineName: string;
  baseline: number;
  baselineCI: [number, number];
  /** figure ÷ baseline (medians), with its own interval; null when a side is flagged. */
  ratio: number | null;
  ratioCI: [number, number] | null;
  /** 'higher'/'lower' when the ratio's whole interval lies on that side of 1. */
  verdict: 'higher' | 'lower' | 'not distinguishable' | 'excluded';
  rounds: number;
  /** Why no ratio is given: a contestant did not connect every listener, missed its cadence, or answered errors. */
  excluded?: string;
  target?: { text: string; met: boolean | null };
  /** The ratio is the median of per-round ratios of adjacent windows (not figure ÷ baseline). */
  paired?: true;
  /** The rounds came from this many server processes per side, and every interval was resampled over processes, then rounds. */
  processes?: number;
}

export interface Comparison {
  part: string;
  name: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Stampede's rounds and the baseline's, in the order they were taken. */
  a: number[];
  baselineName: string;
  b: number[];
  excluded?: string | undefined;
  target?: { text: string; test: (r: Estimate) => boolean };
  /** a[i] and b[i] were taken side by side (adjacent windows): the ratio is the median of the per-pair ratios. */
  paired?: boolean;
  /** The server process (index) round i of both sides was measured on: intervals are resampled over processes, then rounds (see estimate). */
  groups?: number[];
}

const precision = (x: number[] | null) => (x ? `[${x.map((v) => v.toPrecision(3)).join(', ')}]` : '');

/** Collects the entries of a run; every figure and ratio gets its bootstrap interval here and only here. */
export class Ledger {
  readonly entries: Entry[] = [];

  constructor(
    private readonly seed: number,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** A figure against a baseline measured in the same run. A flagged comparison keeps its figures but gets no ratio. */
  compare(e: Comparison): Entry {
    if (e.groups && !e.paired) throw new Error(`${e.name}: rounds grouped by process are compared in pairs`);
    const fa = estimate(e.a, this.seed, e.groups);
    const fb = estimate(e.b, this.seed, e.groups);
    let r = e.excluded ? null : e.paired ? pairedRatio(e.a, e.b, this.seed, e.groups) : ratio(e.a, e.b, this.seed);
    if (r && ![r.median, r.lo, r.hi].every(Number.isFinite)) {
      // a baseline round of 0 (a window too short to time) leaves no finite ratio to report
      e = { ...e, excluded: `${e.baselineName} measured 0 in some rounds` };
      r = null;
    }
    const entry = this.record(e, fa, e.baselineName, fb, r, Math.min(e.a.length, e.b.length), e.target ? { text: e.target.text, met: r ? e.target.test(r) : null } : undefined);
    this.log(`  ${e.name}: ${fa.median.toPrecision(4)} ${precision(entry.figureCI)} vs ${e.baselineName} ${fb.median.toPrecision(4)} ${precision(entry.baselineCI)} → ${entry.ratio?.toFixed(3) ?? e.excluded} ${precision(entry.ratioCI)}${entry.target ? ` target met: ${entry.target.met}` : ''}`);
    return entry;
  }

  /** A figure against a fixed target; the target is met only when the figure's whole interval is on the right side. */
  against(e: { part: string; name: string; unit: string; better: 'higher' | 'lower'; a: (number | null)[]; limit: number; limitName: string; excluded?: string | undefined }): Entry {
    const values = e.a.filter((x): x is number => x !== null && Number.isFinite(x));
    if (values.length < e.a.length) e = { ...e, excluded: `${e.a.length - values.length} of ${e.a.length} rounds had no value` };
    const fa = estimate(values, this.seed);
    const rel: Estimate = { median: fa.median / e.limit, lo: fa.lo / e.limit, hi: fa.hi / e.limit, n: values.length };
    const within = e.better === 'lower' ? fa.hi <= e.limit : fa.lo >= e.limit;
    const r = e.excluded ? null : rel;
    const limit: Estimate = { median: e.limit, lo: e.limit, hi: e.limit, n: values.length };
    const entry = this.record(e, fa, e.limitName, limit, r, values.length, { text: `${e.better === 'lower' ? '≤' : '≥'} ${e.limit} ${e.unit} (whole interval)`, met: r ? within : null });
    this.log(`  ${e.name}: ${fa.median.toPrecision(4)} ${precision(entry.figureCI)} ${e.unit}; target ${entry.target!.text}: ${entry.target!.met}`);
    return entry;
  }

  /** The one builder of an entry: a figure, what it is measured against, and the ratio (null: excluded). */
  private record(e: { part: string; name: string; unit: string; better: 'higher' | 'lower'; excluded?: string | undefined; paired?: boolean; groups?: number[] }, figure: Estimate, baselineName: string, baseline: Estimate, r: Estimate | null, rounds: number, target: Entry['target']): Entry {
    const entry: Entry = {
      part: e.part,
      name: e.name,
      unit: e.unit,
      better: e.better,
      figure: figure.median,
      figureCI: [figure.lo, figure.hi],
      baselineName,
      baseline: baseline.median,
      baselineCI: [baseline.lo, baseline.hi],
      ratio: r ? r.median : null,
      ratioCI: r ? [r.lo, r.hi] : null,
      verdict: r ? verdict(r) : 'excluded',
      rounds,
      ...(e.excluded ? { excluded: e.excluded } : {}),
      ...(target ? { target } : {}),
      ...(e.paired ? { paired: true as const } : {}),
      ...(e.groups && new Set(e.groups).size > 1 ? { processes: new Set(e.groups).size } : {}),
    };
    this.entries.push(entry);
    return entry;
  }
}
