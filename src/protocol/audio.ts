/**
 * Binary audio chunk codec (docs/protocol.md, "Audio chunks"). Decoding never throws and never reads
 * past the buffer: every length is checked against what is left.
 */
export const AUDIO_VERSION = 1;
export const AUDIO_KIND = 1;
export const HEADER_BYTES = 16;
export const MAX_FRAMES = 50;
export const MAX_FRAME_BYTES = 1275;
export const MAX_CHUNK_BYTES = 16 * 1024;

export interface AudioChunk {
  seq: number;
  captureMs: number;
  frames: Uint8Array[];
}

export type AudioDecodeError =
  | 'TOO_SHORT'
  | 'TOO_LARGE'
  | 'BAD_VERSION'
  | 'BAD_KIND'
  | 'BAD_FRAME_COUNT'
  | 'BAD_FRAME_LENGTH'
  | 'TRUNCATED'
  | 'TRAILING_BYTES';

export type AudioDecodeResult = { ok: true; chunk: AudioChunk } | { ok: false; code: AudioDecodeError };

export function encodeAudioChunk(chunk: AudioChunk): Buffer {
  if (chunk.frames.length < 1 || chunk.frames.length > MAX_FRAMES) throw new RangeError(`frame count must be 1..${MAX_FRAMES}`);
  let size = HEADER_BYTES;
  for (const f of chunk.frames) {
    if (f.length < 1 || f.length > MAX_FRAME_BYTES) throw new RangeError(`frame length must be 1..${MAX_FRAME_BYTES}`);
    size += 2 + f.length;
  }
  if (size > MAX_CHUNK_BYTES) throw new RangeError(`chunk larger than ${MAX_CHUNK_BYTES} bytes`);
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt8(AUDIO_VERSION, 0);
  buf.writeUInt8(AUDIO_KIND, 1);
  buf.writeUInt16BE(chunk.frames.length, 2);
  buf.writeUInt32BE(chunk.seq >>> 0, 4);
  buf.writeDoubleBE(chunk.captureMs, 8);
  let o = HEADER_BYTES;
  for (const f of chunk.frames) {
    buf.writeUInt16BE(f.length, o);
    buf.set(f, o + 2);
    o += 2 + f.length;
  }
  return buf;
}

/** Checks a chunk's framing without copying frames; the server uses this on the hot path. */
export function validateAudioChunk(buf: Uint8Array): { ok: true; seq: number; captureMs: number; frameCount: number } | { ok: false; code: AudioDecodeError } {
  if (buf.length < HEADER_BYTES) return { ok: false, code: 'TOO_SHORT' };
  if (buf.length > MAX_CHUNK_BYTES) return { ok: false, code: 'TOO_LARGE' };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint8(0) !== AUDIO_VERSION) return { ok: false, code: 'BAD_VERSION' };
  if (view.getUint8(1) !== AUDIO_KIND) return { ok: false, code: 'BAD_KIND' };
  const n = view.getUint16(2);
  if (n < 1 || n > MAX_FRAMES) return { ok: false, code: 'BAD_FRAME_COUNT' };
  let o = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (o + 2 > buf.length) return { ok: false, code: 'TRUNCATED' };
    const len = view.getUint16(o);
    if (len < 1 || len > MAX_FRAME_BYTES) return { ok: false, code: 'BAD_FRAME_LENGTH' };
    o += 2 + len;
    if (o > buf.length) return { ok: false, code: 'TRUNCATED' };
  }
  if (o !== buf.length) return { ok: false, code: 'TRAILING_BYTES' };
  return { ok: true, seq: view.getUint32(4), captureMs: view.getFloat64(8), frameCount: n };
}

export function decodeAudioChunk(buf: Uint8Array): AudioDecodeResult {
  const v = validateAudioChunk(buf);
  if (!v.ok) return v;
  const frames: Uint8Array[] = [];
  let o = HEADER_BYTES;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < v.frameCount; i++) {
    const len = view.getUint16(o);
    frames.push(buf.subarray(o + 2, o + 2 + len));
    o += 2 + len;
  }
  return { ok: true, chunk: { seq: v.seq, captureMs: v.captureMs, frames } };
}

/** Reads only the header fields a listener needs to measure delay and spot gaps. */
export function peekAudioHeader(buf: Uint8Array): { seq: number; captureMs: number } | null {
  if (buf.length < HEADER_BYTES || buf[0] !== AUDIO_VERSION || buf[1] !== AUDIO_KIND) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { seq: view.getUint32(4), captureMs: view.getFloat64(8) };
}
