import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { SERVER_DEFAULTS } from '../../src/config.js';

const read = (p: string): Promise<string> => readFile(new URL(`../../${p}`, import.meta.url), 'utf8');

/** How docs/reliability.md writes a default: units a reader can check at a glance. */
function figure(key: string, v: number): string {
  if (key.endsWith('Ms')) return v < 1_000 ? `${v} ms` : v >= 120_000 && v % 60_000 === 0 ? `${v / 60_000} min` : `${v / 1_000} s`;
  if (/Bytes$|^maxPayload$|^maxHeaderSize$/.test(key)) {
    for (const [unit, n] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (v % n === 0) return `${v / n} ${unit}`;
  }
  if (/^joinRate/.test(key)) return `${v.toLocaleString('en-US')}/s`;
  return v.toLocaleString('en-US');
}

describe('docs/reliability.md', () => {
  it('has every row the settings cite, and states each setting it names at its real default', async () => {
    const doc = await read('docs/reliability.md');
    const config = await read('src/config.ts');
    const rows = new Set([...doc.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
    const cited = [...config.matchAll(/reliability\.md ((?:#\d+(?:, )?)+)/g)].flatMap((m) => [...m[1]!.matchAll(/#(\d+)/g)].map((x) => Number(x[1])));
    expect(cited.length).toBeGreaterThan(10);
    for (const n of cited) expect(rows, `reliability.md #${n} is cited in src/config.ts`).toContain(n);
    expect([...rows].sort((a, b) => a - b)).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));

    const defaults = SERVER_DEFAULTS as unknown as Record<string, unknown>;
    const stated = [...doc.matchAll(/`([a-zA-Z]+)` = ([0-9](?:[0-9.]|,[0-9])*(?:\/s| ms| s| min| KiB| MiB| GiB)?)/g)];
    expect(stated.length).toBeGreaterThan(20);
    for (const [, key, text] of stated) {
      expect(Object.keys(defaults), `\`${key}\` in docs/reliability.md is a setting`).toContain(key);
      const v = defaults[key!];
      if (typeof v === 'number') expect(text!.trim(), key).toBe(figure(key!, v));
    }
    // every setting named in a limit column exists
    for (const line of doc.split('\n').filter((l) => /^\| \d+ \|/.test(l))) {
      for (const m of line.split('|')[4]!.matchAll(/`([a-zA-Z]+)`/g)) expect(Object.keys(defaults)).toContain(m[1]);
    }
  });
});
