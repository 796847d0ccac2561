import { createServer, type Socket } from 'node:net';
import { frameOnceServer, serveChild } from './child.js';

/** Objects kept per listener: 22 small objects with an array each, about 2.6 KiB of heap (Stampede keeps ~3.7, the floor ~1.1). */
const KEPT_OBJECTS = 22;

/**
 * An experiment on floor 2 (issue #15, session 10): the same raw node:net fan-out, but every listener also
 * keeps about 2.6 KiB of JavaScript objects, made as it connects — the difference between Stampede's heap per
 * listener and the floor's (ws, its parser and sender, the connection's record). The fan-out never reads
 * them: they only spread the sockets the fan-out does touch over more memory, as Stampede's are. If the
 * floor's CPU per chunk rises toward Stampede's, that much of the gap is memory layout (cache and TLB
 * misses on the same write path), not code.
 */
serveChild(() => {
  const server = createServer();
  const kept = new Map<Socket, unknown[]>();
  return frameOnceServer(server, (add) =>
    server.on('connection', (socket) => {
      socket.on('error', () => socket.destroy());
      kept.set(socket, Array.from({ length: KEPT_OBJECTS }, (_, i) => ({ i, next: null, tag: 'x', list: [i] })));
      socket.on('close', () => kept.delete(socket));
      add(socket);
    }),
  );
});
