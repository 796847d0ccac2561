/**
 * Ogg encapsulation of Opus (RFC 3533 pages, RFC 7845 headers): a writer for recordings and a
 * reader that checks what it reads. Pure: bytes in, bytes out.
 */

const CRC_TABLE = (() => {
  // Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final XOR
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

export function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!) >>> 0;
  return crc;
}

export const OGG_CONTINUED = 0x01;
export const OGG_BOS = 0x02;
export const OGG_EOS = 0x04;
/** Opus always counts granule positions at 48 kHz. */
export const OPUS_RATE = 48_000;
/** libopus's encoder look-ahead at 48 kHz: samples a player drops from the start (RFC 7845 §4.2). */
export const DEFAULT_PRE_SKIP = 312;

export interface PageSpec {
  headerType: number;
  granule: bigint;
  serial: number;
  seq: number;
  /** Whole packets; together they need at most 255 lacing values. */
  packets: Uint8Array[];
}

function lacing(packets: Uint8Array[]): number[] {
  const out: number[] = [];
  for (const p of packets) {
    for (let n = p.length; ; n -= 255) {
      if (n < 255) {
        out.push(n);
        break;
      }
      out.push(255);
    }
  }
  return out;
}

/** One Ogg page, CRC filled in. */
export function oggPage(p: PageSpec): Buffer {
  const lace = lacing(p.packets);
  if (lace.length > 255) throw new RangeError('too many packets for one Ogg page');
  const body = p.packets.reduce((n, x) => n + x.length, 0);
  const page = Buffer.alloc(27 + lace.length + body);
  page.write('OggS', 0, 'latin1');
  page.writeUInt8(0, 4);
  page.writeUInt8(p.headerType, 5);
  page.writeBigInt64LE(p.granule, 6);
  page.writeUInt32LE(p.serial >>> 0, 14);
  page.writeUInt32LE(p.seq >>> 0, 18);
  page.writeUInt8(lace.length, 26);
  page.set(lace, 27);
  let o = 27 + lace.length;
  for (const x of p.packets) {
    page.set(x, o);
    o += x.length;
  }
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

/** 48 kHz samples in an Opus packet, from its TOC byte (RFC 6716 §3.1); 0 for a packet that is not Opus. */
export function opusPacketSamples(packet: Uint8Array): number {
  if (packet.length < 1) return 0;
  const toc = packet[0]!;
  const config = toc >> 3;
  const frameSamples = config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? [480, 960][config & 1]! : [120, 240, 480, 960][config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : packet.length >= 2 ? packet[1]! & 0x3f : 0;
  const samples = frames * frameSamples;
  return samples > 5760 ? 0 : samples; // a packet holds at most 120 ms
}

export interface OggOpusOptions {
  serial: number;
  preSkip?: number;
  /** The rate the audio was captured at (informational; RFC 7845 §5.1). */
  inputSampleRate?: number;
  vendor?: string;
  /** Vorbis comments, e.g. { TITLE: '…' }. */
  tags?: Record<string, string>;
  /**
   * Continue a stream another writer began (its headers already written): the next page's sequence number,
   * the granule reached, and the packets of its last audio page (end() marks that page end-of-stream).
   */
  resumeAt?: { seq: number; granule: bigint; lastPackets?: Uint8Array[] };
}

/** What end() gives: the last audio page again, marked end-of-stream (to write over it), or an empty last page to append. */
export interface OggEnd {
  page: Buffer;
  /** True: `page` has the length of the last audio page and replaces it in place; false: append it. */
  replacesLast: boolean;
}

/**
 * Writes an Ogg Opus stream page by page: headers first, then one page per call of audio(), returned at
 * once so a file holds every chunk as soon as it is written (an instance that dies or hands its space
 * over leaves nothing behind in memory). end() marks the last page end-of-stream: the same page again
 * with the flag set, the same length, for the caller to write over the one it wrote.
 */
export class OggOpusWriter {
  private seq = 0;
  private granule = 0n;
  private last: { packets: Uint8Array[]; granule: bigint; seq: number } | null = null;
  readonly preSkip: number;

  constructor(private readonly o: OggOpusOptions) {
    this.preSkip = o.preSkip ?? DEFAULT_PRE_SKIP;
    if (o.resumeAt) {
      this.seq = o.resumeAt.seq;
      this.granule = o.resumeAt.granule;
      if (o.resumeAt.lastPackets) this.last = { packets: o.resumeAt.lastPackets, granule: o.resumeAt.granule, seq: o.resumeAt.seq - 1 };
    }
  }

  /** The OpusHead page (beginning of stream) and the OpusTags page. */
  headers(): Buffer {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head.writeUInt8(1, 8); // version
    head.writeUInt8(1, 9); // mono
    head.writeUInt16LE(this.preSkip, 10);
    head.writeUInt32LE(this.o.inputSampleRate ?? OPUS_RATE, 12);
    head.writeInt16LE(0, 16); // output gain
    head.writeUInt8(0, 18); // mapping family 0: mono or stereo, no table
    const vendor = Buffer.from(this.o.vendor ?? 'stampede', 'utf8');
    const comments = Object.entries(this.o.tags ?? {}).map(([k, v]) => Buffer.from(`${k}=${v}`, 'utf8'));
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4 + comments.reduce((n, c) => n + 4 + c.length, 0));
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    let o = 12 + vendor.length;
    tags.writeUInt32LE(comments.length, o);
    o += 4;
    for (const c of comments) {
      tags.writeUInt32LE(c.length, o);
      c.copy(tags, o + 4);
      o += 4 + c.length;
    }
    return Buffer.concat([
      oggPage({ headerType: OGG_BOS, granule: 0n, serial: this.o.serial, seq: this.seq++, packets: [head] }),
      oggPage({ headerType: 0, granule: 0n, serial: this.o.serial, seq: this.seq++, packets: [tags] }),
    ]);
  }

  /** The page of these packets, to write now. */
  audio(packets: Uint8Array[]): Buffer {
    // a frame whose TOC byte does not parse is counted as the protocol's 20 ms, so time never stands still
    for (const p of packets) this.granule += BigInt(opusPacketSamples(p) || 960);
    this.last = { packets, granule: this.granule, seq: this.seq };
    return oggPage({ headerType: 0, granule: this.granule, serial: this.o.serial, seq: this.seq++, packets });
  }

  /** The end of the stream: the last audio page marked end-of-stream (it replaces that page), or an empty last page when there was none. */
  end(): OggEnd {
    const l = this.last;
    if (l) return { page: oggPage({ headerType: OGG_EOS, granule: l.granule, serial: this.o.serial, seq: l.seq, packets: l.packets }), replacesLast: true };
    return { page: oggPage({ headerType: OGG_EOS, granule: this.granule, serial: this.o.serial, seq: this.seq++, packets: [] }), replacesLast: false };
  }
}

export interface ReadPage {
  headerType: number;
  granule: bigint;
  serial: number;
  seq: number;
  crcOk: boolean;
  /** Packets completed on this page (a packet continued from the page before is joined). */
  packets: Uint8Array[];
}

/**
 * The pages of a stream whose writer may have died mid-write: every whole page with a good CRC from
 * the start, up to the first one that is torn, damaged or not a page, how many bytes they span, and
 * where the last of them begins.
 */
export function readOggPrefix(buf: Uint8Array): { pages: ReadPage[]; bytes: number; lastAt: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const pages: ReadPage[] = [];
  let o = 0;
  let lastAt = -1;
  while (o + 27 <= b.length && b.toString('latin1', o, o + 4) === 'OggS') {
    const n = b.readUInt8(o + 26);
    if (o + 27 + n > b.length) break;
    const size = 27 + n + [...b.subarray(o + 27, o + 27 + n)].reduce((a, x) => a + x, 0);
    if (o + size > b.length) break;
    const [page] = readOggPages(b.subarray(o, o + size));
    if (!page?.crcOk) break;
    pages.push(page);
    lastAt = o;
    o += size;
  }
  return { pages, bytes: o, lastAt };
}

/** Reads Ogg pages; throws on bytes that are not a page. */
export function readOggPages(buf: Uint8Array): ReadPage[] {
  const pages: ReadPage[] = [];
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let partial: Uint8Array[] = [];
  for (let o = 0; o < b.length; ) {
    if (o + 27 > b.length || b.toString('latin1', o, o + 4) !== 'OggS') throw new Error(`no Ogg page at byte ${o}`);
    const n = b.readUInt8(o + 26);
    const lace = [...b.subarray(o + 27, o + 27 + n)];
    const size = 27 + n + lace.reduce((a, x) => a + x, 0);
    if (o + size > b.length) throw new Error(`truncated Ogg page at byte ${o}`);
    const page = Buffer.from(b.subarray(o, o + size));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    const packets: Uint8Array[] = [];
    let p = o + 27 + n;
    for (const len of lace) {
      partial.push(b.subarray(p, p + len));
      p += len;
      if (len < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    pages.push({ headerType: b.readUInt8(o + 5), granule: b.readBigInt64LE(o + 6), serial: b.readUInt32LE(o + 14), seq: b.readUInt32LE(o + 18), crcOk: oggCrc(page) === crc, packets });
    o += size;
  }
  return pages;
}

export interface OggOpusCheck {
  ok: boolean;
  problems: string[];
  pages: number;
  /** Pages after the two header pages (OpusHead, OpusTags): in a Stampede recording, one per audio chunk. */
  audioPages: number;
  packets: number;
  preSkip: number;
  /** Seconds of audio the stream declares: (last granule − pre-skip) / 48 kHz. */
  durationSeconds: number;
}

/** Checks a whole Ogg Opus file: CRCs, page order, OpusHead and OpusTags, granules that never go back, EOS last. */
export function checkOggOpus(buf: Uint8Array): OggOpusCheck {
  const problems: string[] = [];
  let pages: ReadPage[] = [];
  try {
    pages = readOggPages(buf);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const bad = pages.filter((p) => !p.crcOk).length;
  if (bad) problems.push(`${bad} page(s) with a wrong CRC`);
  pages.forEach((p, i) => p.seq !== i && problems.push(`page ${i} has sequence number ${p.seq}`));
  const head = pages[0]?.packets[0];
  const isHead = !!head && Buffer.from(head).toString('latin1', 0, 8) === 'OpusHead' && head.length >= 19;
  if (!isHead || pages[0]!.headerType !== OGG_BOS) problems.push('first page is not a beginning-of-stream OpusHead');
  const preSkip = isHead ? Buffer.from(head).readUInt16LE(10) : 0;
  const tags = pages[1]?.packets[0];
  if (!tags || Buffer.from(tags).toString('latin1', 0, 8) !== 'OpusTags') problems.push('second page is not OpusTags');
  let last = 0n;
  let packets = 0;
  for (const p of pages.slice(2)) {
    if (p.packets.length > 0 ? p.granule <= last : p.granule < last) problems.push(`granule position does not increase at page ${p.seq}`);
    last = p.granule;
    packets += p.packets.length;
  }
  const end = pages[pages.length - 1];
  if (!end || !(end.headerType & OGG_EOS)) problems.push('last page is not marked end-of-stream');
  // a stream ends once: a page marked end-of-stream before the last says two streams were put together
  pages.slice(0, -1).forEach((p) => p.headerType & OGG_EOS && problems.push(`page ${p.seq} is marked end-of-stream before the last`));
  return { ok: problems.length === 0, problems, pages: pages.length, audioPages: Math.max(0, pages.length - 2), packets, preSkip, durationSeconds: Math.max(0, Number(last - BigInt(preSkip)) / OPUS_RATE) };
}
