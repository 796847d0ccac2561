import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { SupervisedProcess, freePort, httpAnswers } from '../../src/cluster/index.js';
import { useTempDir } from '../helpers/tmp.js';

/** A tiny HTTP server in a child Node, optionally ignoring SIGTERM. */
function server(port: number, opts: { ignoreTerm?: boolean } = {}): string[] {
  const src = [
    opts.ignoreTerm ? "process.on('SIGTERM', () => console.log('ignoring SIGTERM'));" : '',
    `require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1', () => console.log('up'));`,
  ].join('\n');
  return ['-e', src];
}

describe('SupervisedProcess', () => {
  const dir = useTempDir('stampede-proc-');

  it('starts a process, waits until it serves, logs to its file and stops it with SIGTERM', async () => {
    const port = await freePort();
    const p = new SupervisedProcess({ name: 'web', command: process.execPath, args: server(port), logFile: join(dir(), 'web.log'), ready: () => httpAnswers(`http://127.0.0.1:${port}/`) }, systemClock());
    await p.start();
    expect(p.running).toBe(true);
    expect(await httpAnswers(`http://127.0.0.1:${port}/`)).toBe(true);
    expect(await p.tail()).toContain('up');
    const [a, b] = await Promise.all([p.stop(), p.stop()]);
    expect(a).toEqual({ code: null, signal: 'SIGTERM' });
    expect(b).toBe(a);
    expect(p.running).toBe(false);
    expect(await httpAnswers(`http://127.0.0.1:${port}/`)).toBe(false);
  });

  it('escalates to SIGKILL when the process ignores SIGTERM past its deadline', async () => {
    const port = await freePort();
    const clock = manualClock(0);
    const p = new SupervisedProcess(
      { name: 'stubborn', command: process.execPath, args: server(port, { ignoreTerm: true }), logFile: join(dir(), 's.log'), ready: () => httpAnswers(`http://127.0.0.1:${port}/`), stopTimeoutMs: 5_000 },
      clock,
    );
    const started = p.start();
    // readiness is polled on the clock, and work takes no time on it: wait (in wall time) until the child
    // says it serves, then move the clock to the next poll. Moving it while the child boots would run the
    // 20 s readiness deadline out on a loaded machine, where a Node child takes seconds to start.
    await expect.poll(() => p.tail(), { timeout: 60_000 }).toContain('up');
    while (!(await Promise.race([started.then(() => true), new Promise<false>((r) => setImmediate(() => r(false)))]))) await clock.advance(100);
    const stopped = p.stop();
    await expect.poll(() => p.tail(), { timeout: 30_000 }).toContain('ignoring SIGTERM');
    expect(p.running).toBe(true);
    await clock.advance(5_000);
    expect(await stopped).toEqual({ code: null, signal: 'SIGKILL' });
  }, 120_000);

  it('says which command is missing, and when a process exits before it is ready, with its log', async () => {
    const missing = new SupervisedProcess({ name: 'nope', command: 'stampede-no-such-binary', args: [], logFile: join(dir(), 'n.log'), ready: async () => false }, systemClock());
    await expect(missing.start()).rejects.toThrow(/PROCESS_NOT_FOUND: nope: cannot run stampede-no-such-binary \(ENOENT\)/);
    const dies = new SupervisedProcess({ name: 'dies', command: process.execPath, args: ['-e', "console.error('bad config: port'); process.exit(3)"], logFile: join(dir(), 'd.log'), ready: async () => false }, systemClock());
    await expect(dies.start()).rejects.toThrow(/PROCESS_EXITED: dies exited \(code 3, signal null\) before it was ready:\n[^]*bad config: port/);
  });

  it('gives up on a process that never becomes ready, and stops it', async () => {
    const p = new SupervisedProcess(
      { name: 'mute', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], logFile: join(dir(), 'm.log'), ready: async () => false, readyTimeoutMs: 300 },
      systemClock(),
    );
    await expect(p.start()).rejects.toThrow(/PROCESS_NOT_READY: mute was not ready within 300 ms/);
    expect(p.running).toBe(false);
  });

  it('kill() ends a process at once, without its clean stop', async () => {
    const port = await freePort();
    const p = new SupervisedProcess({ name: 'victim', command: process.execPath, args: server(port, { ignoreTerm: true }), logFile: join(dir(), 'v.log'), ready: () => httpAnswers(`http://127.0.0.1:${port}/`) }, systemClock());
    await p.start();
    expect(await p.kill()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await p.tail()).not.toContain('ignoring SIGTERM');
  });
});
