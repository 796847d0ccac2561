import { createServer, type Socket } from 'node:net';
import { DenseSockets } from '../../src/server/dense-sockets.js';
import { DirectWriter } from '../../src/server/direct-write.js';
import { binaryFrame } from '../../src/server/preframed.js';
import type { AddressInfo } from 'node:net';
import { serveChild } from './child.js';

/**
 * An experiment on floor 2 (issue #15, session 12): the same raw node:net fan-out, but each pre-built frame
 * goes straight to the socket's libuv handle when nothing is queued (`DirectWriter`, src/server/direct-write.ts),
 * skipping Node's Writable layer; `socket.write` otherwise. What the floor would save below Node's stream API.
 */
serveChild(async () => {
  const writer = DirectWriter.create();
  if (!writer) throw new Error('this Node has no direct handle write');
  const server = createServer();
  const sockets = new DenseSockets<Socket, Socket>();
  server.on('connection', (socket) => {
    socket.on('error', () => socket.destroy());
    sockets.add(socket, socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let direct = 0;
  return {
    port: (server.address() as AddressInfo).port,
    broadcast: (buf) => {
      const frame = binaryFrame(buf);
      const s = sockets.sockets;
      for (let i = 0; i < s.length; i++) {
        if (writer.write(s[i]!, frame)) direct++;
        else s[i]!.write(frame);
      }
    },
    stop: async () => {
      process.stderr.write(`net-floor-direct: ${direct} direct writes, ${writer.partial} partial\n`);
      for (const s of sockets.clear()) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
});
