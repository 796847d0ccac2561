import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { DenseSockets } from '../../src/server/dense-sockets.js';
import { binaryFrame } from '../../src/server/preframed.js';
import { serveChild } from './child.js';

/**
 * Floor 1: ws does the handshake and reads what clients send, but each chunk is framed ONCE and that
 * one buffer is written to every listener's socket from the same dense socket array Stampede's fan-out
 * walks (the sockets come from the server's public 'upgrade' event, not from ws internals).
 */
serveChild(async () => {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const sockets = new DenseSockets<Socket, Socket>();
  http.on('upgrade', (req, socket: Socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(socket, socket);
      ws.on('close', () => sockets.delete(socket));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as { port: number }).port,
    broadcast: (buf) => sockets.writeAll(binaryFrame(buf)),
    stop: async () => {
      for (const s of sockets.clear()) s.destroy();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
});
