/**
 * ws exports its `Sender` (`WebSocket.Sender`, and the ES module's named `Sender`), but @types/ws does not
 * declare it. This declares the one static method Stampede uses, as ws 8 documents and implements it
 * (lib/sender.js): unmasked, it returns the frame header and the payload as two buffers.
 */
import 'ws';

declare module 'ws' {
  interface SenderFrameOptions {
    fin: boolean;
    opcode: number;
    mask: boolean;
    readOnly: boolean;
    rsv1?: boolean;
  }
  class Sender {
    /** The RFC 6455 frame for `data`: `[header, payload]`, or one merged buffer when masking a read-only payload. */
    static frame(data: Buffer, options: SenderFrameOptions): Buffer[];
  }
}
