import OpusScript from 'opusscript';
import { describe, expect, it } from 'vitest';
import { OpusVoice } from '../../src/audio/opus.js';
import { checkOggOpus, oggCrc, OggOpusWriter, opusPacketSamples, readOggPages } from '../../src/audio/ogg.js';
import { createRng } from '../../src/sim/index.js';

function stream(seconds: number, packetsPerPage = 5): { file: Buffer; packets: Uint8Array[] } {
  const voice = new OpusVoice(createRng(3).next, { bitrate: 24_000 });
  const w = new OggOpusWriter({ serial: 0x5eed, tags: { TITLE: 'test' } });
  const parts: Buffer[] = [w.headers()];
  const packets: Uint8Array[] = [];
  for (let i = 0; i < (seconds * 50) / packetsPerPage; i++) {
    const page = Array.from({ length: packetsPerPage }, () => voice.nextPacket());
    packets.push(...page);
    parts.push(w.audio(page));
  }
  // the end marks the last page end-of-stream: the same page again, written over the first
  const end = w.end();
  if (end.replacesLast) parts[parts.length - 1] = end.page;
  else parts.push(end.page);
  voice.delete();
  return { file: Buffer.concat(parts), packets };
}

describe('Ogg Opus recordings (RFC 3533 pages, RFC 7845 headers)', () => {
  it('computes the Ogg CRC-32 (polynomial 0x04C11DB7, unreflected)', () => {
    expect(oggCrc(new Uint8Array())).toBe(0);
    // "123456789" is the classic check input; CRC-32/MPEG-2 without init/xorout (CRC-32/BZIP2's core) gives 0x89A1897F
    expect(oggCrc(Buffer.from('123456789')).toString(16)).toBe('89a1897f');
  });

  it('reads the TOC byte: frame size and count', () => {
    expect(opusPacketSamples(Uint8Array.of(0xfc))).toBe(960); // CELT FB 20 ms, one frame
    expect(opusPacketSamples(Uint8Array.of(0x08 | 1))).toBe(1920); // SILK NB 20 ms, two frames
    expect(opusPacketSamples(Uint8Array.of(0xf8 | 3, 3))).toBe(2880); // CELT 20 ms, three frames (code 3)
    expect(opusPacketSamples(new Uint8Array())).toBe(0);
  });

  it('writes a stream a checker accepts: CRCs, OpusHead, OpusTags, rising granules, end of stream, duration', () => {
    const { file, packets } = stream(10);
    const c = checkOggOpus(file);
    expect(c.problems).toEqual([]);
    expect(c.packets).toBe(packets.length);
    expect(c.pages).toBe(2 + packets.length / 5);
    expect(c.audioPages).toBe(packets.length / 5);
    // 500 packets of 20 ms less the 312-sample pre-skip
    expect(c.durationSeconds).toBeCloseTo(10 - 312 / 48_000, 6);
    const pages = readOggPages(file);
    expect(Buffer.from(pages[1]!.packets[0]!).toString('utf8')).toContain('TITLE=test');
    // the packets come back out as they went in
    expect(pages.slice(2).flatMap((p) => p.packets).map((p) => Buffer.from(p).toString('hex'))).toEqual(packets.map((p) => Buffer.from(p).toString('hex')));
  });

  it('finds what is wrong with a damaged file', () => {
    const { file } = stream(1);
    const flipped = Buffer.from(file);
    flipped[flipped.length - 3]! ^= 0xff;
    expect(checkOggOpus(flipped).problems).toContain('1 page(s) with a wrong CRC');
    expect(checkOggOpus(file.subarray(0, file.length - 10)).ok).toBe(false);
    expect(checkOggOpus(Buffer.from('not ogg at all, not at all')).ok).toBe(false);
  });

  it('the synthetic speaker is real Opus: libopus decodes it to a voice-like signal with pauses', () => {
    const { packets } = stream(6);
    const dec = new OpusScript(48_000, 1, OpusScript.Application.AUDIO);
    const rms: number[] = [];
    for (const p of packets) {
      const pcm = dec.decode(Buffer.from(p));
      const s = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
      expect(s.length).toBe(960);
      rms.push(Math.sqrt(s.reduce((a, x) => a + x * x, 0) / s.length));
    }
    dec.delete();
    const loud = rms.filter((x) => x > 500).length;
    const quiet = rms.filter((x) => x < 50).length;
    // mostly voiced, with breaths between phrases
    expect(loud / rms.length).toBeGreaterThan(0.5);
    expect(quiet).toBeGreaterThan(3);
  });
});
