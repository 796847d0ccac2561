import { Sender } from 'ws';

/**
 * Encode-once fan-out. ws frames every send() for every socket; a broadcast of the same bytes to
 * thousands of listeners builds the binary frame once and writes it to each listener's socket as is
 * (the audio plane does the writing, from a dense array of the upgraded sockets).
 */

/** ws's own framing for a server → client frame: FIN, binary, never masked (RFC 6455 §5.1). */
const BINARY = { fin: true, opcode: 0x2, mask: false, readOnly: false } as const;

/**
 * The complete binary frame for `payload` (RFC 6455 §5.2), framed by ws's public `Sender.frame` (7-bit,
 * 16-bit or 64-bit length) and joined into one buffer, so each listener gets one write.
 */
export function binaryFrame(payload: Buffer): Buffer {
  return Buffer.concat(Sender.frame(payload, BINARY));
}

const TEXT = { fin: true, opcode: 0x1, mask: false, readOnly: false } as const;

/** The complete text frame for a UTF-8 `payload`, framed the same way: a message that rides in a fan-out write. */
export function textFrame(payload: Buffer): Buffer {
  return Buffer.concat(Sender.frame(payload, TEXT));
}
