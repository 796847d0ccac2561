import { createServer, type Socket } from 'node:net';
import { DenseSockets } from '../../src/server/dense-sockets.js';
import { binaryFrame } from '../../src/server/preframed.js';
import { serveChild } from './child.js';

/**
 * Floor 2, no ws at all: a raw node:net server that writes one pre-built WebSocket frame per listener
 * per chunk, from the same dense socket array Stampede's fan-out walks. Clients connect with plain TCP
 * (no handshake) and read the same frames. Nothing here can be cheaper except the write itself.
 */
serveChild(async () => {
  const sockets = new DenseSockets<Socket, Socket>();
  const server = createServer((socket) => {
    sockets.add(socket, socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    broadcast: (buf) => sockets.writeAll(binaryFrame(buf)),
    stop: async () => {
      for (const s of sockets.clear()) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
});
