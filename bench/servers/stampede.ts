import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { createApp } from '../../src/app.js';
import { ONE_ADDRESS_CROWD, type ServerConfig } from '../../src/config.js';
import { serveChild } from './child.js';

/**
 * Stampede's server. Audio comes in the way a real host sends it: over the host's WebSocket, into the
 * same ingest path (validation, recording, live window, fan-out) as every live space. The limits that
 * protect a production server from a crowd are raised so the fan-out and join figures measure the
 * work, not refusals; argv[2] (JSON) may set admission back (the overload part). The heartbeat is
 * pushed out of every measuring window, as it is for every other contestant.
 */
interface Host {
  send: (chunk: Buffer) => void;
  stop: () => Promise<void>;
}

/**
 * BENCH_HOST=worker: the host in a worker thread; the chunk is posted to it and it sends it over its own
 * WebSocket. Its CPU time is still this process's, but no client socket lives in the server's isolate
 * (as in a deployment): Node's shared write call site then sees 4 object shapes instead of 6 or more.
 * Measured at parity with the host in the server's thread (docs/bench.md, Fan-out), so not the default.
 */
async function workerHost(url: string, token: string): Promise<Host> {
  const worker = new Worker(new URL('./stampede-host.js', import.meta.url), { workerData: { url, token } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { open?: boolean; error?: string }) => (m.open ? resolve() : reject(new Error(m.error))));
    worker.once('error', reject);
  });
  return {
    send: (chunk) => worker.postMessage(chunk),
    stop: async () => {
      worker.postMessage('stop');
      await worker.terminate();
    },
  };
}

/** The host's WebSocket in the server's own thread (the default). */
async function inlineHost(url: string, token: string): Promise<Host> {
  const host = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  await new Promise<void>((resolve, reject) => {
    host.once('open', () => resolve());
    host.once('error', reject);
  });
  return {
    send: (chunk) => host.send(chunk),
    stop: async () => {
      host.terminate();
    },
  };
}

const overrides = JSON.parse(process.argv[2] ?? '{}') as Partial<ServerConfig>;

serveChild(async () => {
  const app = createApp({
    logger: pino({ level: 'silent' }),
    server: {
      port: 0,
      demoSpace: false,
      maxListeners: 1_000_000,
      maxConnections: 60_000,
      maxConnectionsPerAddress: 60_000,
      joinRatePerSecond: 1e7,
      joinBurst: 1e7,
      // the bench's clients are one loopback address
      ...ONE_ADDRESS_CROWD,
      shedEventLoopLagMs: 60_000,
      heartbeatMs: 3_600_000,
      shutdownDeadlineMs: 1_000,
      ...overrides,
    },
  });
  const url = await app.start();
  const { space, hostToken } = app.server.createSpace({ title: 'bench', scheduledStart: Date.now(), hostName: 'bench' });
  await app.server.startSpace(space);
  const hostUrl = `${url.replace(/^http/, 'ws')}/ws?space=${space.id}`;
  const host = process.env.BENCH_HOST === 'worker' ? await workerHost(hostUrl, hostToken) : await inlineHost(hostUrl, hostToken);
  return {
    port: Number(new URL(url).port),
    spaceId: space.id,
    broadcast: host.send,
    stop: async () => {
      await host.stop();
      await app.stop();
    },
  };
});
