import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { frameOnceServer, serveChild } from './child.js';

/**
 * Floor 1: ws does the handshake and reads what clients send, but each chunk is framed ONCE and that
 * one buffer is written to every listener's socket from the same dense socket array Stampede's fan-out
 * walks (the sockets come from the server's public 'upgrade' event, not from ws internals).
 */
serveChild(() => {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  return frameOnceServer(http, (add) => http.on('upgrade', (req, socket: Socket, head) => wss.handleUpgrade(req, socket, head, () => add(socket))));
});
