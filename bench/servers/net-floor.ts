import { createServer, type Socket } from 'node:net';
import { frameOnce, serveChild } from './child.js';

/**
 * Floor 2, no ws at all: a raw node:net server that writes one pre-built WebSocket frame per listener
 * per chunk. Clients connect with plain TCP (no handshake) and read the same frames. Nothing here can
 * be cheaper except the write itself.
 */
serveChild(async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      const i = sockets.indexOf(socket);
      if (i >= 0) {
        sockets[i] = sockets[sockets.length - 1]!;
        sockets.pop();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    broadcast: (buf) => {
      const frame = frameOnce(buf);
      for (let i = 0; i < sockets.length; i++) sockets[i]!.write(frame);
    },
    stop: async () => {
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
});
