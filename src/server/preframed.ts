/**
 * Encode-once fan-out. ws frames every send() for every socket; a broadcast of the same bytes to
 * thousands of listeners builds the binary frame once and writes it to each listener's socket as is
 * (the audio plane does the writing, from a dense array of the upgraded sockets).
 */

/**
 * The complete binary frame for `payload` (RFC 6455 §5.2): FIN + opcode 2, no mask (server → client
 * frames are never masked), 7-bit, 16-bit or 64-bit length.
 */
export function binaryFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x82;
  if (n < 126) frame[1] = n;
  else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(frame, head);
  return frame;
}
