import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ERRORS } from '../../src/protocol/index.js';

describe('the error table in docs/protocol.md', () => {
  it('lists every error code the server can answer, with its HTTP status, and no other', () => {
    const doc = readFileSync('docs/protocol.md', 'utf8');
    const table = doc.slice(doc.indexOf('## Errors'), doc.indexOf('## HTTP API'));
    const rows = [...table.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(new Set(rows.map(([c]) => c)).size).toBe(rows.length);
    const code = Object.fromEntries(Object.entries(API_ERRORS).map(([c, e]) => [c, e.status]));
    expect(Object.fromEntries(rows)).toEqual(code);
  });
});
