import { closeSync, openSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createServerMetrics, OPEN_FDS_REFRESH_MS, PER_SOCKET_DEFAULTS } from '../../src/metrics/index.js';
import { useApps } from '../helpers/app.js';

describe('/metrics', () => {
  const startApp = useApps();

  it('exposes every documented metric, plus the default Node metrics, from the app registry', async () => {
    const s = await startApp();
    const res = await fetch(`${s.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const doc = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `(stampede_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.length).toBeGreaterThan(15);
    for (const name of documented) expect(exposed, name).toContain(name);
    for (const name of exposed) if (name.startsWith('stampede_')) expect(documented, `${name} is undocumented`).toContain(name);
    expect(exposed).toContain('nodejs_eventloop_lag_seconds');
    expect(exposed).toContain('process_resident_memory_bytes');
    expect(exposed).toContain('process_open_fds');
    // the defaults that list every socket on each scrape are left out, as docs/metrics.md says
    for (const name of PER_SOCKET_DEFAULTS) {
      expect(exposed, name).not.toContain(name);
      expect(doc, name).toContain(`\`${name}\``);
    }
  });

  it('counts open file descriptors without listing them on every scrape: a scrape reports the last count, refreshed once OPEN_FDS_REFRESH_MS has passed', async () => {
    const clock = manualClock(Date.now());
    // the listing, as on a kernel that does not give the count as the directory's size
    const m = createServerMetrics({ clock, openFdsBySize: false });
    const fds = async () => Number(/^process_open_fds (\d+)$/m.exec(await m.registry.getSingleMetricAsString('process_open_fds'))?.[1]);
    const before = await fds();
    expect(before).toBeGreaterThan(0);
    const opened = Array.from({ length: 50 }, () => openSync('/dev/null', 'r'));
    try {
      expect(await fds()).toBe(before);
      await clock.advance(OPEN_FDS_REFRESH_MS);
      await expect.poll(fds).toBeGreaterThanOrEqual(before + 50);
    } finally {
      for (const fd of opened) closeSync(fd);
    }
  });

  it('counts open file descriptors on every scrape with one stat where the kernel gives the count as the size of /proc/self/fd (Linux 6.2 and later)', async () => {
    const bySize = statSync('/proc/self/fd').size > 0;
    const m = createServerMetrics();
    const fds = async () => Number(/^process_open_fds (\d+)$/m.exec(await m.registry.getSingleMetricAsString('process_open_fds'))?.[1]);
    const before = await fds();
    expect(before).toBeGreaterThan(0);
    const opened = Array.from({ length: 50 }, () => openSync('/dev/null', 'r'));
    try {
      // the kernel's own count at once where it gives one; elsewhere (the test above) the last listing's count
      // until OPEN_FDS_REFRESH_MS has passed
      if (bySize) expect(await fds()).toBeGreaterThanOrEqual(before + 50);
      else expect(await fds()).toBe(before);
    } finally {
      for (const fd of opened) closeSync(fd);
    }
    if (bySize) expect(await fds()).toBeLessThan(before + 50);
  });

  it('keeps two apps in one process apart (no global registry)', async () => {
    const a = await startApp();
    const b = await startApp();
    await fetch(`${a.url}/api/v1/spaces/x/join`, { method: 'POST' });
    const ta = await (await fetch(`${a.url}/metrics`)).text();
    const tb = await (await fetch(`${b.url}/metrics`)).text();
    expect(ta).toMatch(/stampede_join_attempts_total\{kind="real",outcome="rejected"\} 1/);
    expect(tb).toMatch(/stampede_join_attempts_total\{kind="real",outcome="rejected"\} 0/);
  });
});
