import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkOggOpus, oggPage, readOggPages } from '../../src/audio/index.js';
import { encodeAudioChunk } from '../../src/protocol/index.js';
import { Recording } from '../../src/server/recording.js';
import { AudioPlane } from '../../src/server/audio-plane.js';
import { parseServerConfig } from '../../src/config.js';
import { manualClock } from '../../src/clock.js';
import { createServerMetrics } from '../../src/metrics/index.js';
import { Space } from '../../src/space/index.js';
import { DenseSockets } from '../../src/server/dense-sockets.js';

const log = pino({ level: 'silent' });
// a CELT 20 ms frame (TOC 0xfc) with the chunk's number in it, so the file shows which chunk each page holds
const chunk = (seq: number): Buffer => encodeAudioChunk({ seq, captureMs: seq * 100, frames: [Uint8Array.of(0xfc, seq & 0xff, seq >> 8), Uint8Array.of(0xfc, 1, 2)] });
const seqsIn = (file: Buffer): number[] => readOggPages(file).slice(2).filter((p) => p.packets.length).map((p) => p.packets[0]![1]! | (p.packets[0]![2]! << 8));

describe('a recording another instance continues (the shared recording directory of a cluster)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stampede-rec-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every whole page of a dead owner, cuts the torn one, and continues from the next chunk into one valid file', async () => {
    const first = new Recording(dir, 's1', log, 'T', 0, { writer: 'i1' });
    await first.open();
    for (let k = 0; k < 10; k++) first.append(chunk(k));
    // the owner stops writing and dies in the middle of a page
    await first.abandon();
    const torn = oggPage({ headerType: 0, granule: 99_999n, serial: 1, seq: 11, packets: [Buffer.alloc(300, 7)] });
    await appendFile(join(dir, 's1.i1.opus.partial'), torn.subarray(0, 150));

    const { recording, resumed } = await Recording.resume(dir, 's1', log, 'T', 0, 'i1', { writer: 'i2' });
    expect(resumed).toBe(true);
    // the file ends at the owner's last chunk, and the new owner appends from its live window what comes after it
    expect(recording.lastSeq).toBe(9);
    for (let k = 3; k < 15; k++) recording.append(chunk(k));
    await recording.finish();
    const file = await readFile(join(dir, 's1.opus'));
    const check = checkOggOpus(file);
    expect(check.problems).toEqual([]);
    expect(seqsIn(file)).toEqual(Array.from({ length: 15 }, (_, k) => k));
    expect(recording.chunks).toBe(15);
  });

  it('an owner that stops leaves every chunk it took in the file: a new owner whose live window starts right after the last one misses none', async () => {
    const owner = new Recording(dir, 's5', log, 'T', 0, { writer: 'i1' });
    await owner.open();
    for (let k = 0; k < 10; k++) owner.append(chunk(k));
    await owner.abandon();
    // what a user finds in the shared directory: chunks 0–9, the last one too
    expect(seqsIn(await readFile(join(dir, 's5.i1.opus.partial')))).toEqual(Array.from({ length: 10 }, (_, k) => k));

    // the instance that takes over heard the space only from chunk 10 on (it joined the cluster just before)
    const { recording } = await Recording.resume(dir, 's5', log, 'T', 10, 'i1', { writer: 'i2' });
    expect(recording.lastSeq).toBe(9);
    for (let k = 10; k < 14; k++) recording.append(chunk(k));
    await recording.finish();
    const file = await readFile(join(dir, 's5.opus'));
    expect(checkOggOpus(file).problems).toEqual([]);
    expect(seqsIn(file)).toEqual(Array.from({ length: 14 }, (_, k) => k));
    expect(checkOggOpus(file).audioPages).toBe(recording.chunks);
  });

  it('a new owner that ends the space before another chunk comes marks the dead owner\'s last page end-of-stream', async () => {
    const owner = new Recording(dir, 's6', log, 'T', 0, { writer: 'i1' });
    await owner.open();
    for (let k = 0; k < 3; k++) owner.append(chunk(k));
    await owner.abandon();
    const { recording } = await Recording.resume(dir, 's6', log, 'T', 3, 'i1', { writer: 'i2' });
    await recording.finish();
    const file = await readFile(join(dir, 's6.opus'));
    expect(checkOggOpus(file).problems).toEqual([]);
    expect(seqsIn(file)).toEqual([0, 1, 2]);
  });

  it('an instance that takes a space over before it heard any of its chunks goes on after the last one in the file, not from 0', async () => {
    const owner = new Recording(dir, 's7', log, 'T', 0, { writer: 'i1' });
    await owner.open();
    for (let k = 0; k < 30; k++) owner.append(chunk(k));
    await owner.abandon();
    const plane = new AudioPlane(parseServerConfig({ instanceId: 'i2' }), manualClock(0), createServerMetrics(), log, () => dir);
    const space = new Space('s7', 'T', 'host', 0);
    space.start(0);
    const r = await plane.takeOver(space, 'i1');
    expect(r).toEqual({ resumed: true, filled: 0, lastSeq: 29 });
    // its host's next chunk carries sequence 30, and the recording takes it
    expect(space.chunks).toBe(30);
    expect(plane.check(space, chunk(30))).toBeNull();
    plane.deliver(space, chunk(30), new DenseSockets());
    await plane.close(space);
    expect(seqsIn(await readFile(join(dir, 's7.opus')))).toEqual(Array.from({ length: 31 }, (_, k) => k));
  });

  it('an owner that stalled past its lease writes nothing into the file the new owner continues, and leaves the recording to it without an error', async () => {
    const stale = new Recording(dir, 's4', log, 'T', 0, { writer: 'i1' });
    await stale.open();
    for (let k = 0; k < 5; k++) stale.append(chunk(k));
    // the new owner takes the space over while the old one is stalled: it has not learnt of it yet
    const { recording } = await Recording.resume(dir, 's4', log, 'T', 0, 'i1', { writer: 'i2' });
    // both go on with the chunks after the takeover, the stale owner's marked so that they can be told apart
    const stalePage = (seq: number): Buffer => encodeAudioChunk({ seq, captureMs: seq * 100, frames: [Uint8Array.of(0xfc, seq & 0xff, seq >> 8), Uint8Array.of(0xfc, 0xee, 0xee)] });
    for (let k = 5; k < 9; k++) {
      stale.append(stalePage(k));
      recording.append(chunk(k));
    }
    await recording.finish();
    const published = await readFile(join(dir, 's4.opus'));
    // the old owner wakes up and ends its space: no ENOENT from a rename, no end page into the published file
    await expect(stale.finish()).resolves.toBeUndefined();
    expect(stale.ready).toBe(false);
    const after = await readFile(join(dir, 's4.opus'));
    expect(after.equals(published)).toBe(true);
    expect(checkOggOpus(after).problems).toEqual([]);
    expect(seqsIn(after)).toEqual(Array.from({ length: 9 }, (_, k) => k));
    expect(readOggPages(after).some((p) => p.packets.some((x) => x[1] === 0xee && x[2] === 0xee))).toBe(false);
    // nothing is left behind in the shared directory: no partial file of either owner
    expect(await readdir(dir)).toEqual(['s4.opus']);
  });

  it('a previous owner that finished as it was taken over: its end-of-stream mark comes off and the file goes on', async () => {
    const owner = new Recording(dir, 's8', log, 'T', 0, { writer: 'i1' });
    await owner.open();
    for (let k = 0; k < 3; k++) owner.append(chunk(k));
    await owner.abandon();
    // the last page marked end-of-stream in place, as finish() marks it, before the rename
    const file = join(dir, 's8.i1.opus.partial');
    const bytes = await readFile(file);
    const pages = readOggPages(bytes);
    const last = pages.at(-1)!;
    const marked = oggPage({ ...last, headerType: last.headerType | 4 });
    await writeFile(file, Buffer.concat([bytes.subarray(0, bytes.length - marked.length), marked]));
    const { recording } = await Recording.resume(dir, 's8', log, 'T', 3, 'i1', { writer: 'i2' });
    for (let k = 3; k < 6; k++) recording.append(chunk(k));
    await recording.finish();
    const out = await readFile(join(dir, 's8.opus'));
    expect(checkOggOpus(out).problems).toEqual([]);
    expect(seqsIn(out)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('starts a new file at the live window when the owner left none here (a directory not shared), and says so', async () => {
    const { recording, resumed } = await Recording.resume(dir, 's2', log, 'T', 40, 'i1', { writer: 'i2' });
    expect(resumed).toBe(false);
    for (let k = 40; k < 45; k++) recording.append(chunk(k));
    await recording.finish();
    const file = await readFile(join(dir, 's2.opus'));
    expect(checkOggOpus(file).problems).toEqual([]);
    expect(seqsIn(file)).toEqual([40, 41, 42, 43, 44]);
    // the file names the chunk it starts at, for whoever continues it
    expect(Buffer.from(readOggPages(file)[1]!.packets[0]!).toString('latin1')).toContain('STAMPEDE_FIRST_SEQ=40');
  });

  it('finds a recording another instance published, and nothing before it is published', async () => {
    expect(await Recording.published(dir, 's3', log)).toBeNull();
    const r = new Recording(dir, 's3', log, 'T', 0);
    await r.open();
    for (let k = 0; k < 4; k++) r.append(chunk(k));
    expect(await Recording.published(dir, 's3', log)).toBeNull();
    await r.finish();
    const found = await Recording.published(dir, 's3', log);
    expect(found && { ready: found.ready, chunks: found.chunks, bytes: found.bytes }).toEqual({ ready: true, chunks: 4, bytes: r.bytes });
  });
});
