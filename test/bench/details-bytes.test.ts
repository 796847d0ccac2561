import { describe, expect, it } from 'vitest';
import type { Proc } from '../../bench/lib/proc.js';

// the compiled bench (npm run build), as the bench itself runs it
const { spawnProc } = (await import(new URL('../../dist/bench/lib/proc.js', import.meta.url).href)) as typeof import('../../bench/lib/proc.js');

/** One `GET …/:id` from a bench server: its status, header names and body. */
async function details(name: string): Promise<{ status: number; headers: string[]; contentLength: string | null; body: string }> {
  const p: Proc = spawnProc(`servers/${name}`, [], null);
  try {
    const info = await p.call<{ port: number; spaceId: string }>('info');
    const res = await fetch(`http://127.0.0.1:${info.port}/api/v1/spaces/${info.spaceId}`);
    return { status: res.status, headers: [...res.headers.keys()].sort(), contentLength: res.headers.get('content-length'), body: await res.text() };
  } finally {
    await p.stop();
  }
}

describe('the details baseline (bench/servers/bare-http)', () => {
  it('answers the same bytes as Stampede: the same headers and a body of the same size and shape', async () => {
    const [stampede, bare] = await Promise.all([details('stampede'), details('bare-http')]);
    expect(bare.status).toBe(200);
    expect(stampede.status).toBe(200);
    expect(bare.headers).toEqual(stampede.headers);
    expect(bare.contentLength).toBe(stampede.contentLength);
    expect(Buffer.byteLength(bare.body)).toBe(Buffer.byteLength(stampede.body));
    // the same fields with the same values, but for the ids and times
    const shape = (body: string) => JSON.stringify(JSON.parse(body), (k, v: unknown) => (k === 'id' && typeof v === 'string' && v.length === 16 ? 'ID' : /At$|Start$/.test(k) && typeof v === 'string' ? 'TIME' : v));
    expect(shape(bare.body)).toBe(shape(stampede.body));
  }, 20_000);
});
