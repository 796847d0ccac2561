import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runCli, runToEnd } from '../helpers/cli.js';

describe('stampede serve', () => {
  it('serves the demo space with live audio, and stops cleanly on SIGTERM with listeners told 1001', async () => {
    const r = runCli(['serve', '--port', '0', '--log-level', 'warn']);
    const [, url] = await r.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const spaces = (await (await fetch(`${url}/api/v1/spaces`)).json()) as { spaces: { id: string; state: string }[] };
    expect(spaces.spaces).toHaveLength(1);
    expect(spaces.spaces[0]!.state).toBe('live');
    const join = (await (await fetch(`${url}/api/v1/spaces/${spaces.spaces[0]!.id}/join`, { method: 'POST' })).json()) as { wsUrl: string };
    const ws = new WebSocket(join.wsUrl);
    const gotAudio = new Promise<void>((resolve) => ws.on('message', (_d, binary) => binary && resolve()));
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await gotAudio;
    r.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await r.exited).toEqual({ code: 0, signal: null });
    expect(r.stdout()).toContain('stopped cleanly');
  });

  it('refuses a bad port with a clear message and a non-zero exit', async () => {
    const r = await runToEnd(['serve', '--port', 'eighty']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected a port number');
  });

  it('says clearly when the port is taken, and exits instead of hanging', async () => {
    const first = runCli(['serve', '--port', '0', '--log-level', 'warn', '--no-demo']);
    const [, port] = await first.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const second = await runToEnd(['replay', '--port', port!, '--out', '/nonexistent-never-written']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`127.0.0.1:${port} is already in use`);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
  });

  it('has --help on every command', async () => {
    const top = await runToEnd(['--help']);
    expect(top.code).toBe(0);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands).toContain('serve');
    for (const c of commands) {
      const h = await runToEnd([c, '--help']);
      expect(h.code, c).toBe(0);
      expect(h.stdout, c).toContain(`Usage: stampede ${c}`);
    }
  });
});
