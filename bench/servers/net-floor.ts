import { createServer } from 'node:net';
import { frameOnceServer, serveChild } from './child.js';

/**
 * Floor 2, no ws at all: a raw node:net server that writes one pre-built WebSocket frame per listener
 * per chunk, from the same dense socket array Stampede's fan-out walks. Clients connect with plain TCP
 * (no handshake) and read the same frames. Nothing here can be cheaper except the write itself.
 */
serveChild(() => {
  const server = createServer();
  return frameOnceServer(server, (add) =>
    server.on('connection', (socket) => {
      socket.on('error', () => socket.destroy());
      add(socket);
    }),
  );
});
