import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * Encode-once fan-out. ws frames every send() for every socket; a broadcast of the same bytes to
 * thousands of listeners can build the binary frame once and write it to each socket as is.
 *
 * This reaches into two ws internals (the socket and the sender's state), so it writes directly
 * only when ws itself would write immediately: no compression, nothing queued in the sender.
 * Otherwise it falls back to ws.send(), which keeps frames in order.
 */
interface WsInternals {
  _socket?: Socket;
  _sender?: { _state?: number; _queue?: unknown[] };
}

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

/** Sends a pre-built frame; returns false (and sends nothing) when the fast path does not apply. */
export function sendFrame(ws: WebSocket, frame: Buffer): boolean {
  const w = ws as unknown as WsInternals;
  const socket = w._socket;
  const sender = w._sender;
  if (!socket || !sender || sender._state !== 0 || (sender._queue && sender._queue.length > 0) || !socket.writable) return false;
  socket.write(frame);
  return true;
}
