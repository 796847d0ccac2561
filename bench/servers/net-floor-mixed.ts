import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import * as ws from 'ws';
import { binaryFrame } from '../../src/server/preframed.js';
import { frameOnceServer, serveChild } from './child.js';

/**
 * An experiment on floor 2 (issue #15, session 9): the same raw node:net fan-out, plus, once per chunk,
 * the two other Writables Stampede's process writes for every chunk — the host's ws `Receiver` reading
 * the chunk's frame and the recording's `fs.WriteStream` appending it. Node's `writeOrBuffer` then calls
 * `stream._write` on three classes instead of one, as in Stampede. If that call site is what keeps
 * `Socket._write` from being inlined, this floor's CPU per chunk rises toward Stampede's.
 */
serveChild(async () => {
  const server = createServer();
  const h = await frameOnceServer(server, (add) =>
    server.on('connection', (socket) => {
      socket.on('error', () => socket.destroy());
      add(socket);
    }),
  );
  // ws exports its Receiver (a Writable) at runtime; @types/ws does not declare it
  const { Receiver } = ws as unknown as { Receiver: new (o: { isServer: boolean; binaryType: string }) => Writable };
  const receiver = new Receiver({ isServer: false, binaryType: 'nodebuffer' });
  receiver.on('message', () => undefined);
  const path = join(tmpdir(), `net-floor-mixed-${process.pid}.bin`);
  const file = createWriteStream(path);
  const fanOut = h.broadcast!;
  return {
    port: h.port,
    broadcast: (buf) => {
      receiver.write(binaryFrame(buf));
      file.write(buf);
      fanOut(buf);
    },
    stop: async () => {
      await new Promise<void>((r) => file.end(r));
      await rm(path, { force: true });
      await h.stop();
    },
  };
});
