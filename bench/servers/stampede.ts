import { pino } from 'pino';
import { createApp } from '../../src/app.js';
import { serveChild } from './child.js';

/** Stampede's server with a synthetic host speaking at audio cadence; limits raised for the swarm. */
serveChild(async () => {
  const app = createApp({
    logger: pino({ level: 'silent' }),
    server: { port: 0, demoSpace: false, maxListeners: 1_000_000, maxConnections: 30_000, maxConnectionsPerAddress: 30_000, joinRatePerSecond: 1e6, joinBurst: 1e6, chunkIntervalMs: 100, shedEventLoopLagMs: 60_000 },
  });
  const url = await app.start();
  const { space } = app.server.createSpace({ title: 'bench', scheduledStart: Date.now(), hostName: 'bench' });
  await app.server.startSpace(space, { syntheticHost: true });
  return { port: Number(new URL(url).port), spaceId: space.id, stop: () => app.stop() };
});
