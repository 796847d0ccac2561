import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE, mayReconnect } from '../../src/protocol/index.js';

describe('the close-code table in docs/protocol.md', () => {
  it('lists every code the server sends, with the reconnect rule the code follows', () => {
    const doc = readFileSync('docs/protocol.md', 'utf8');
    const table = doc.slice(doc.indexOf('### Close codes'), doc.indexOf('## Recording'));
    const rows = [...table.matchAll(/^\| (\d{4}) \| [^|]+ \| ([^|]+) \|$/gm)].map((m) => ({ code: Number(m[1]), reconnect: m[2]!.trim() }));
    expect(rows.map((r) => r.code).sort()).toEqual(Object.values(CLOSE).map(Number).sort());
    for (const r of rows) {
      expect([r.code, r.reconnect.startsWith('yes')]).toEqual([r.code, mayReconnect(r.code)]);
    }
  });
});
