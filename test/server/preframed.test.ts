import { describe, expect, it } from 'vitest';
import type { EventEmitter } from 'node:events';
import * as wsModule from 'ws';

// ws exports its frame parser at run time; @types/ws does not declare it
type ReceiverLike = EventEmitter & { write(chunk: Buffer): void };
const { Receiver } = wsModule as unknown as { Receiver: new (opts: { isServer: boolean }) => ReceiverLike };
import { binaryFrame } from '../../src/server/preframed.js';

describe('binaryFrame', () => {
  it('builds frames that ws\'s own parser reads back byte for byte, at every length class', async () => {
    for (const n of [0, 1, 125, 126, 127, 1000, 65535, 65536, 70_000]) {
      const payload = Buffer.alloc(n, n & 0xff);
      // a client-side receiver accepts unmasked frames, as a browser does
      const receiver = new Receiver({ isServer: false });
      const got = new Promise<Buffer>((resolve, reject) => {
        receiver.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? resolve(data) : reject(new Error('text'))));
        receiver.on('error', reject);
      });
      receiver.write(binaryFrame(payload));
      expect((await got).equals(payload), `length ${n}`).toBe(true);
    }
  });
});
