import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { checkOggOpus, readOggPages } from '../../src/audio/index.js';
import { manualClock, systemClock } from '../../src/clock.js';
import { startRedisServer } from '../../src/cluster/index.js';
import { encodeAudioChunk } from '../../src/protocol/index.js';
import { api, connectHost, createSpace, joinAndConnect, metricValue, startSpace, useApps } from '../helpers/app.js';
import { useTempDir } from '../helpers/tmp.js';
import { useCleanup } from '../helpers/cleanup.js';

// each chunk's first frame carries its sequence number, so the file shows which chunk each page holds; with a second
// frame of 1,275 bytes each chunk's page is 27 + 7 + 3 + 1,275 = 1,312 bytes
const chunk = (seq: number): Buffer => encodeAudioChunk({ seq, captureMs: seq * 100, frames: [Uint8Array.of(0xfc, seq & 0xff, seq >> 8), new Uint8Array(1275).fill(0xfc)] });
const PAGE = 1_312;
const seqsIn = (file: Buffer): number[] => readOggPages(file).slice(2).filter((p) => p.packets.length).map((p) => p.packets[0]![1]! | (p.packets[0]![2]! << 8));

describe('the shared recording across a takeover from an owner that only stalled', () => {
  const startApp = useApps();
  const dir = useTempDir('stampede-fence-');
  const cleanup = useCleanup();

  it('the stale owner writes on and ends the space, but no page of its after the takeover reaches the published file: one valid Ogg file, every chunk once, in order', async () => {
    const redis = await startRedisServer({ dir: dir(), clock: systemClock() });
    cleanup.push(() => redis.process.stop());
    const recordingDir = join(dir(), 'recordings');
    // both on clocks that move only when told: i1's never does (it stalls: no lease renewal, never learns it lost the
    // space), i2's is moved until it finds i1 silent for a lease (150 ms) and takes the space over
    const c1 = manualClock(Date.now());
    const c2 = manualClock(Date.now());
    // i1's own view of the recording differs from i2's after the takeover: its disk quota (per instance) stops it
    // after chunk 14 (15 pages), so the last page it marks end-of-stream is chunk 14's
    const i1 = await startApp({ redisUrl: redis.url, instanceId: 'i1', peerIntervalMs: 50, recordingDir, recordingQuotaBytes: 15 * PAGE }, { clock: c1 });
    // i2's log, as its operator reads it
    const log2: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void log2.push(line) });
    const i2 = await startApp({ redisUrl: redis.url, instanceId: 'i2', peerIntervalMs: 50, recordingDir }, { clock: c2, logger });
    const { id, hostToken } = await createSpace(i1.url);
    await startSpace(i1.url, id, hostToken);
    await expect.poll(async () => (await api<{ space: { state: string } }>(i2.url, 'GET', `/api/v1/spaces/${id}`)).body.space?.state).toBe('live');
    const listener = await joinAndConnect(i2.url, id);
    const host = await connectHost(i1.url, id, hostToken);
    for (let k = 0; k < 10; k++) host.ws.send(chunk(k));
    await listener.until((c) => c.binaries.length >= 10, 'chunks 0–9 on i2');

    await expect.poll(async () => (await c2.advance(50), await metricValue(i2.app, 'stampede_cluster_takeovers_total')), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => log2.some((l) => l.includes('"msg":"recording continued from the shared directory"')), { timeout: 10_000 }).toBe(true);
    // the host is still on i1, which still thinks it owns the space: both instances take the chunks after the takeover
    for (let k = 10; k < 20; k++) host.ws.send(chunk(k));
    await listener.until((c) => c.binaries.length >= 20, 'chunks 10–19 on i2');
    // the host ends the space where it is connected: on i1, which still thinks it owns it
    expect((await api(i1.url, 'POST', `/api/v1/spaces/${id}/end`, {}, { authorization: `Bearer ${hostToken}` })).status).toBe(200);

    const recording = async (url: string): Promise<Buffer | null> => {
      const res = await fetch(`${url}/api/v1/spaces/${id}/recording`);
      return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : (await res.arrayBuffer(), null);
    };
    // i1 finishes first (it ended the space) and serves the recording once it is published in the shared directory
    await expect.poll(() => recording(i1.url), { timeout: 10_000 }).not.toBeNull();
    const file = await readFile(join(recordingDir, `${id}.opus`));
    expect(checkOggOpus(file).problems).toEqual([]);
    expect(seqsIn(file)).toEqual(Array.from({ length: 20 }, (_, k) => k));
    // i2, the owner, published it; both serve the same file, and nothing else is left in the shared directory
    await expect.poll(() => recording(i2.url), { timeout: 10_000 }).not.toBeNull();
    expect((await recording(i2.url))!.equals(file)).toBe(true);
    expect((await recording(i1.url))!.equals(file)).toBe(true);
    expect(await readdir(recordingDir)).toEqual([`${id}.opus`]);
  });
});
