import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { joinLikeAClient, runCli, runToEnd } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';

interface SpaceView {
  id: string;
  state: string;
  host: { name: string };
  chunks: number;
}

describe('stampede serve --faults', () => {
  const dir = useTempDir('stampede-faults-');

  it('crashes the live space on plan: listeners closed with 4003, the recording kept, the conversation reopened elsewhere', async () => {
    const plan = join(dir(), 'faults.yaml');
    await writeFile(plan, 'faults:\n  - kind: crash\n    afterSeconds: 6\n    reopen: { afterSeconds: 0.5, host: Backup host }\n');
    // the crash is due 6 s after start: time for a busy machine to list, join and open the socket first
    const r = runCli(['serve', '--port', '0', '--log-level', 'warn', '--faults', plan, '--recording-dir', join(dir(), 'rec')]);
    const [, url] = await r.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const list = async (): Promise<SpaceView[]> => ((await (await fetch(`${url}/api/v1/spaces`)).json()) as { spaces: SpaceView[] }).spaces;
    const [demo] = await list();
    // a fresh server on a busy machine may shed its first joins (503 + Retry-After): a listener tries again, as a client does
    const join_ = await joinLikeAClient(`${url}/api/v1/spaces/${demo!.id}/join`);
    const ws = new WebSocket(join_.wsUrl);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    expect(await closed).toBe(4003);
    await r.waitFor(/fault: reopen: space \S+ live under Backup host/);
    const spaces = await list();
    expect(spaces.map((s) => [s.state, s.host.name])).toEqual([
      ['ended', 'Synthetic host'],
      ['live', 'Backup host'],
    ]);
    // the crashed space's recording is published with every chunk it accepted
    const rec = await fetch(`${url}/api/v1/spaces/${demo!.id}/recording`);
    expect(rec.status).toBe(200);
    expect(Number(rec.headers.get('x-stampede-chunks'))).toBe(spaces[0]!.chunks);
    expect(spaces[0]!.chunks).toBeGreaterThan(0);
    r.child.kill('SIGTERM');
    expect((await r.exited).code).toBe(0);
  });

  it('refuses a plan it cannot play, naming the field, before it starts serving', async () => {
    const plan = join(dir(), 'faults.yaml');
    await writeFile(plan, 'faults:\n  - kind: dropChunks\n    afterSeconds: 1\n    share: 2\n');
    const r = await runToEnd(['serve', '--port', '0', '--faults', plan]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('faults[0].share');
    expect(r.stdout).not.toContain('listening');
  });
});
