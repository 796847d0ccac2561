import type { Metric, Registry } from 'prom-client';

/**
 * A labelled counter and histogram for the request path, read by prom-client's registry like its own.
 * prom-client's labelled child (`labels(...)`) keeps its labels and, on every `inc` or `observe`, checks them
 * again and hashes them into a key to find its value (1–2 µs per request on the join and details paths;
 * issue #15). These children hold their numbers themselves: a child is found once per label set and kept
 * by its caller, and counting is a few additions. The registry asks `get()` at scrape time, which answers
 * what prom-client's `Counter` / `Histogram` would for the same counts (same names, labels, order and
 * values: test/observability/plain-metrics.test.ts holds the two side by side).
 */
type Labels<L extends string> = Record<L, string>;

/** What the registry reads from a metric at scrape time (prom-client's `MetricObjectWithValues`). */
interface Scraped {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
}

abstract class PlainMetric<L extends string, C> {
  readonly aggregator = 'sum' as const;
  protected readonly children = new Map<string, { labels: Labels<L>; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    registers: Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as unknown as Metric);
  }

  protected abstract make(): C;

  /** The child of a label set, made on first use; keep it and count on it. */
  labels(labels: Labels<L>): C {
    let key = '';
    for (const n of this.labelNames) {
      const v = labels[n];
      if (typeof v !== 'string') throw new Error(`${this.name}: label ${n} is missing`);
      key += `${v}\u0000`;
    }
    if (Object.keys(labels).length !== this.labelNames.length) throw new Error(`${this.name}: takes the labels ${this.labelNames.join(', ')}, not ${Object.keys(labels).join(', ')}`);
    let e = this.children.get(key);
    if (!e) this.children.set(key, (e = { labels: { ...labels }, child: this.make() }));
    return e.child;
  }

  reset(): void {
    this.children.clear();
  }
}

export class PlainCounterChild {
  value = 0;
  inc(by = 1): void {
    if (!(by >= 0)) throw new Error(`a counter only goes up, not by ${by}`);
    this.value += by;
  }
}

export class PlainCounter<L extends string> extends PlainMetric<L, PlainCounterChild> {
  readonly type = 'counter' as const;

  protected make(): PlainCounterChild {
    return new PlainCounterChild();
  }

  inc(labels: Labels<L>, by = 1): void {
    this.labels(labels).inc(by);
  }

  async get(): Promise<Scraped> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.children.values()].map(({ labels, child }) => ({ value: child.value, labels })) };
  }
}

export class PlainHistogramChild {
  /** Observations per bucket (not cumulative), the last one past every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`not a number to observe: ${v}`);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class PlainHistogram<L extends string> extends PlainMetric<L, PlainHistogramChild> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registers: Registry[]) {
    super(name, help, labelNames, registers);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  protected make(): PlainHistogramChild {
    return new PlainHistogramChild(this.bounds);
  }

  observe(labels: Labels<L>, v: number): void {
    this.labels(labels).observe(v);
  }

  async get(): Promise<Scraped> {
    const values: Scraped['values'] = [];
    for (const { labels, child } of this.children.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += child.counts[i]!;
        values.push({ labels: { le, ...labels }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...labels }, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
