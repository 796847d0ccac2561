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
  const host = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?space=${space.id}`, { headers: { authorization: `Bearer ${hostToken}` } });
  await new Promise<void>((resolve, reject) => {
    host.once('open', () => resolve());
    host.once('error', reject);
  });
  return {
    port: Number(new URL(url).port),
    spaceId: space.id,
    broadcast: (chunk) => host.send(chunk),
    stop: async () => {
      host.terminate();
      await app.stop();
    },
  };
});
