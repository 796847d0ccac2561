import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { api, createSpace, OPERATOR, useApps } from '../helpers/app.js';
import { hostileText, polluted } from '../helpers/hostile.js';

/** docs/reliability.md #6 and #25: HTTP bodies are decoded at the boundary into a value or a coded 4xx. */
describe('HTTP bodies, over a real socket', () => {
  const startApp = useApps();

  it('every route answers any body with 2xx or a documented 4xx, never 500, and the server stays up', async () => {
    const s = await startApp();
    const { id, hostToken } = await createSpace(s.url);
    const routes: [string, Record<string, string>][] = [
      ['/api/v1/spaces', OPERATOR],
      [`/api/v1/spaces/${id}/join`, {}],
      [`/api/v1/spaces/${id}/start`, { authorization: `Bearer ${hostToken}` }],
      [`/api/v1/spaces/${id}/end`, { authorization: `Bearer ${hostToken}` }],
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), hostileText, async ([path, headers], body) => {
        const r = await api<{ error?: { code: string } }>(s.url, 'POST', path, body, headers);
        expect(r.status === 200 || r.status === 201 || [400, 409, 413, 429, 503, 507].includes(r.status)).toBe(true);
        if (r.status >= 400) expect(r.body.error?.code).toMatch(/^[A-Z_]+$/);
        expect(polluted()).toBe(false);
      }),
      { numRuns: 300 },
    );
    expect((await api(s.url, 'GET', '/healthz')).status).toBe(200);
  });
});

