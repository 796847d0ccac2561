import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { serveChild } from './child.js';

/** Baseline: Socket.IO broadcasting each chunk with io.emit(); its heartbeat pushed out of every window like the others'. */
serveChild(async () => {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, pingInterval: 3_600_000, pingTimeout: 3_600_000, connectTimeout: 60_000 });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as { port: number }).port,
    broadcast: (buf) => io.emit('audio', buf),
    stop: async () => {
      io.disconnectSockets(true);
      await new Promise<void>((r) => io.close(() => r()));
    },
  };
});
