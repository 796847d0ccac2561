import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeAudioEnvelope, decodeControl, decodeInstanceStatus, encodeAudioEnvelope, encodeAudioChunk, encodeControl, type ControlMessage } from '../../src/protocol/index.js';

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);

describe('what instances say to each other', () => {
  it('an audio envelope carries sender, space and the chunk bytes untouched', () => {
    fc.assert(
      fc.property(id, id, fc.uint8Array({ minLength: 0, maxLength: 2048 }), (from, space, bytes) => {
        const chunk = Buffer.from(bytes);
        const m = decodeAudioEnvelope(encodeAudioEnvelope(from, space, chunk));
        expect(m).not.toBeNull();
        expect(m!.from).toBe(from);
        expect(m!.spaceId).toBe(space);
        expect(Buffer.compare(m!.chunk, chunk)).toBe(0);
      }),
    );
    const real = encodeAudioChunk({ seq: 7, captureMs: 1, frames: [new Uint8Array(100)] });
    expect(decodeAudioEnvelope(encodeAudioEnvelope('i1', 'abc', real))!.chunk.equals(real)).toBe(true);
  });

  it('decoding never throws: junk, truncation and bad ids come back as null', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const m = decodeAudioEnvelope(Buffer.from(bytes));
        if (m) expect(m.from).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      }),
    );
    const good = encodeAudioEnvelope('i1', 'space', Buffer.from('x'));
    for (let n = 0; n < 9; n++) expect(decodeAudioEnvelope(good.subarray(0, n))).toBeNull();
    expect(decodeAudioEnvelope(encodeAudioEnvelope('i 1', 'space', Buffer.alloc(1)))).toBeNull();
    fc.assert(fc.property(fc.string(), (s) => void decodeControl(s)));
    for (const junk of ['', 'null', '[]', '{"t":"space"}', '{"t":"nope","from":"i1"}', '{"__proto__":{"t":"counts"}}', '{"t":"counts","from":"i1","counts":{"real":{"a":-1},"virtual":{},"simTime":null}}']) {
      expect(decodeControl(junk), junk).toBeNull();
    }
    expect(decodeInstanceStatus('{')).toBeNull();
  });

  it('control messages round-trip, and only known reactions pass', () => {
    const msgs: ControlMessage[] = [
      { t: 'space', from: 'i1', space: { id: 'abc', title: 'T', hostName: 'h', scheduledStart: 1, state: 'live', startedAt: 2, endedAt: null, hostTokenHash: 'a'.repeat(64), owner: 'i1', synthetic: false, chunks: 7 } },
      { t: 'counts', from: 'i2', counts: { real: { abc: 3 }, virtual: {}, simTime: null } },
      { t: 'reactions', from: 'i3', spaceId: 'abc', counts: { '🔥': 2 } },
    ];
    for (const m of msgs) expect(decodeControl(encodeControl(m))).toEqual(m);
    expect(decodeControl(JSON.stringify({ t: 'reactions', from: 'i3', spaceId: 'abc', counts: { '💩': 1 } }))).toBeNull();
  });
});
