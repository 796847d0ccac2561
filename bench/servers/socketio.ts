import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { audioTicker, serveChild } from './child.js';

/** The other baseline: Socket.IO broadcasting each chunk to everyone with io.emit(). */
serveChild(async () => {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const stopAudio = audioTicker((buf) => io.emit('audio', buf));
  return {
    port: (http.address() as { port: number }).port,
    stop: async () => {
      stopAudio();
      io.disconnectSockets(true);
      await new Promise<void>((r) => io.close(() => r()));
    },
  };
});
