import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HTTP_BUCKETS, PlainCounter, PlainHistogram } from '../../src/metrics/index.js';

describe('plain counter and histogram (the request path counts without prom-client hashing its labels per call)', () => {
  it('scrape exactly as prom-client Counter and Histogram do for the same counts: text and values', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const ph = new PlainHistogram('x_seconds', 'help h', ['route', 'status_class'], HTTP_BUCKETS, [ours]);
    const pc = new PlainCounter('x_total', 'help c', ['kind', 'outcome'], [ours]);
    const h = new Histogram({ name: 'x_seconds', help: 'help h', labelNames: ['route', 'status_class'], buckets: HTTP_BUCKETS, registers: [theirs] });
    const c = new Counter({ name: 'x_total', help: 'help c', labelNames: ['kind', 'outcome'], registers: [theirs] });
    // on a bound, between bounds, past the last one, zero; a kept child and the labels-per-call form
    const values = [0, 0.001, 0.0012, 0.0025, 0.3, 10, 11, 0.07];
    const join = ph.labels({ route: 'join', status_class: '2xx' });
    for (const v of values) {
      join.observe(v);
      h.labels({ route: 'join', status_class: '2xx' }).observe(v);
    }
    ph.observe({ route: 'get_space', status_class: '4xx' }, 0.004);
    h.observe({ route: 'get_space', status_class: '4xx' }, 0.004);
    pc.inc({ kind: 'real', outcome: 'admitted' }, 0);
    c.inc({ kind: 'real', outcome: 'admitted' }, 0);
    const admitted = pc.labels({ kind: 'real', outcome: 'admitted' });
    for (let i = 0; i < 3; i++) {
      admitted.inc();
      c.labels({ kind: 'real', outcome: 'admitted' }).inc();
    }
    pc.inc({ kind: 'virtual', outcome: 'failed' }, 2.5);
    c.inc({ kind: 'virtual', outcome: 'failed' }, 2.5);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const name of ['x_seconds', 'x_total']) {
      const strip = (m: { values: { labels: object; value: number; metricName?: string }[] }) => m.values.map(({ labels, value, metricName }) => ({ labels, value, metricName }));
      expect(strip(await ours.getSingleMetric(name)!.get())).toEqual(strip(await theirs.getSingleMetric(name)!.get()));
    }
    ours.resetMetrics();
    expect(await ours.metrics()).toBe('# HELP x_seconds help h\n# TYPE x_seconds histogram\n\n# HELP x_total help c\n# TYPE x_total counter\n');
  });

  it('refuses what prom-client refuses: unknown or missing labels, a counter going down, a value that is not a number', () => {
    const r = new Registry();
    const ph = new PlainHistogram('y_seconds', 'h', ['route'], [1], [r]);
    const pc = new PlainCounter('y_total', 'c', ['kind'], [r]);
    expect(() => ph.labels({ route: 'a', other: 'b' } as never)).toThrow(/takes the labels route/);
    expect(() => pc.labels({} as never)).toThrow(/label kind is missing/);
    expect(() => pc.inc({ kind: 'a' }, -1)).toThrow(/only goes up/);
    expect(() => ph.observe({ route: 'a' }, Number.NaN)).toThrow(/not a number/);
    expect(() => new PlainCounter('y_total', 'again', ['kind'], [r])).toThrow(/already been registered/);
  });
});
