import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { frameOnce, serveChild } from './child.js';

/**
 * Floor 1: ws does the handshake and reads what clients send, but each chunk is framed ONCE and that
 * one buffer is written to every listener's socket from a dense array (the sockets come from the
 * server's public 'upgrade' event, not from ws internals).
 */
serveChild(async () => {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const sockets: Socket[] = [];
  http.on('upgrade', (req, socket: Socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(socket);
      ws.on('close', () => {
        const i = sockets.indexOf(socket);
        if (i >= 0) {
          sockets[i] = sockets[sockets.length - 1]!;
          sockets.pop();
        }
      });
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as { port: number }).port,
    broadcast: (buf) => {
      const frame = frameOnce(buf);
      for (let i = 0; i < sockets.length; i++) sockets[i]!.write(frame);
    },
    stop: async () => {
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
});
