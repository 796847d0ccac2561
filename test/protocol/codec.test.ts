import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLOSE,
  decodeAudioChunk,
  decodeClientMessage,
  encodeAudioChunk,
  encodeServerMessage,
  MAX_FRAME_BYTES,
  mayReconnect,
  validateAudioChunk,
} from '../../src/protocol/index.js';

const frame = fc.uint8Array({ minLength: 1, maxLength: 300 });
const chunkArb = fc.record({
  seq: fc.nat({ max: 0xffffffff }),
  captureMs: fc.double({ noNaN: true, noDefaultInfinity: true }),
  frames: fc.array(frame, { minLength: 1, maxLength: 40 }),
});

describe('audio chunk codec', () => {
  it('decodes what it encodes, for any valid chunk', () => {
    fc.assert(
      fc.property(chunkArb, (c) => {
        const buf = encodeAudioChunk(c);
        if (buf.length > 16 * 1024) return;
        const d = decodeAudioChunk(buf);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect(d.chunk.seq).toBe(c.seq);
        expect(Object.is(d.chunk.captureMs, c.captureMs)).toBe(true);
        expect(d.chunk.frames.map((f) => Buffer.from(f).toString('hex'))).toEqual(c.frames.map((f) => Buffer.from(f).toString('hex')));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary bytes, and rejects every truncation of a valid chunk', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      const r = decodeAudioChunk(bytes);
      expect(typeof r.ok).toBe('boolean');
    }), { numRuns: 2000 });
    fc.assert(
      fc.property(chunkArb, fc.nat(), (c, cut) => {
        const buf = encodeAudioChunk({ ...c, frames: c.frames.slice(0, 5) });
        const n = cut % buf.length;
        expect(validateAudioChunk(buf.subarray(0, n)).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('names what is wrong with a malformed chunk', () => {
    const good = encodeAudioChunk({ seq: 1, captureMs: 2, frames: [new Uint8Array(10)] });
    expect(validateAudioChunk(good.subarray(0, 8))).toEqual({ ok: false, code: 'TOO_SHORT' });
    const v2 = Buffer.from(good);
    v2[0] = 2;
    expect(validateAudioChunk(v2)).toEqual({ ok: false, code: 'BAD_VERSION' });
    expect(validateAudioChunk(Buffer.concat([good, Buffer.from([0])]))).toEqual({ ok: false, code: 'TRAILING_BYTES' });
    const zero = Buffer.from(good);
    zero.writeUInt16BE(0, 2);
    expect(validateAudioChunk(zero)).toEqual({ ok: false, code: 'BAD_FRAME_COUNT' });
    expect(() => encodeAudioChunk({ seq: 0, captureMs: 0, frames: [new Uint8Array(MAX_FRAME_BYTES + 1)] })).toThrow(RangeError);
  });
});

describe('client message decoder', () => {
  it('never throws, whatever the text', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
      const r = decodeClientMessage(text);
      if (!r.ok) expect(['BAD_MESSAGE', 'UNKNOWN_TYPE', 'TOO_LARGE']).toContain(r.code);
    }), { numRuns: 2000 });
  });

  it('accepts exactly the documented messages', () => {
    expect(decodeClientMessage('{"type":"react","emoji":"🔥"}')).toEqual({ ok: true, msg: { type: 'react', emoji: '🔥' } });
    expect(decodeClientMessage('{"type":"ping","id":3}')).toEqual({ ok: true, msg: { type: 'ping', id: 3 } });
    expect(decodeClientMessage('{"type":"request_speak"}').ok).toBe(true);
    expect(decodeClientMessage('{"type":"grant_speak","listenerId":"c1"}').ok).toBe(true);
    expect(decodeClientMessage('{"type":"ping","id":-1}')).toMatchObject({ ok: false, code: 'BAD_MESSAGE' });
    expect(decodeClientMessage('{"type":"ping","id":1,"constructor":{}}')).toMatchObject({ ok: false, code: 'BAD_MESSAGE' });
    expect(decodeClientMessage('x'.repeat(5000))).toMatchObject({ ok: false, code: 'TOO_LARGE' });
  });

  it('stamps every server message with the protocol version', () => {
    expect(JSON.parse(encodeServerMessage({ type: 'pong', id: 1 }))).toEqual({ v: 1, type: 'pong', id: 1 });
  });

  it('tells clients which closes they may reconnect after', () => {
    expect(mayReconnect(CLOSE.GOING_AWAY)).toBe(true);
    expect(mayReconnect(CLOSE.TRY_AGAIN_LATER)).toBe(true);
    expect(mayReconnect(CLOSE.SLOW_CONSUMER)).toBe(true);
    expect(mayReconnect(CLOSE.SPACE_ENDED)).toBe(false);
    expect(mayReconnect(CLOSE.POLICY)).toBe(false);
  });
});
