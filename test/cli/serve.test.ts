import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { joinLikeAClient, runCli, runToEnd } from '../helpers/cli.js';

describe('stampede serve', () => {
  it('serves the demo space with live audio, and stops cleanly on SIGTERM with listeners told 1001', async () => {
    const r = runCli(['serve', '--port', '0', '--log-level', 'warn']);
    const [, url] = await r.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const spaces = (await (await fetch(`${url}/api/v1/spaces`)).json()) as { spaces: { id: string; state: string }[] };
    expect(spaces.spaces).toHaveLength(1);
    expect(spaces.spaces[0]!.state).toBe('live');
    // a fresh server on a busy machine may shed its first joins (503 + Retry-After): try again, as a client does
    const join = await joinLikeAClient(`${url}/api/v1/spaces/${spaces.spaces[0]!.id}/join`);
    const ws = new WebSocket(join.wsUrl);
    const gotAudio = new Promise<void>((resolve) => ws.on('message', (_d, binary) => binary && resolve()));
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await gotAudio;
    r.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await r.exited).toEqual({ code: 0, signal: null });
    expect(r.stdout()).toContain('stopped cleanly');
  });

  it('creates spaces only with the operator token: generated and printed, or taken from STAMPEDE_OPERATOR_TOKEN and not printed', async () => {
    const create = (url: string, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${url}/api/v1/spaces`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ title: 't', scheduledStart: new Date().toISOString() }) });
    const generated = runCli(['serve', '--port', '0', '--log-level', 'warn', '--no-demo'], { STAMPEDE_OPERATOR_TOKEN: '' });
    const [, url] = await generated.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const [, token] = await generated.waitFor(/operator token ([A-Za-z0-9_-]{32}) /);
    const anon = await create(url!);
    expect(anon.status).toBe(401);
    const body = (await anon.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UNAUTHORIZED');
    expect(body.error.message).toContain('operator token');
    expect((await create(url!, { authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(403);
    expect((await create(url!, { authorization: `Bearer ${token}` })).status).toBe(201);
    generated.child.kill('SIGTERM');

    const chosen = 'chosen-operator-token-0123456789';
    const configured = runCli(['serve', '--port', '0', '--log-level', 'warn', '--no-demo'], { STAMPEDE_OPERATOR_TOKEN: chosen });
    const [, url2] = await configured.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    await configured.waitFor(/Ctrl-C to stop/);
    expect(configured.stdout()).toContain('operator token from STAMPEDE_OPERATOR_TOKEN');
    expect(configured.stdout()).not.toContain(chosen);
    expect((await create(url2!, { authorization: `Bearer ${chosen}` })).status).toBe(201);
    configured.child.kill('SIGTERM');
    expect((await generated.exited).code).toBe(0);
    expect((await configured.exited).code).toBe(0);
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
