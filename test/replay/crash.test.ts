import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { checkOggOpus } from '../../src/audio/index.js';
import { manualClock } from '../../src/clock.js';
import { CLOSE } from '../../src/protocol/index.js';
import { createReplay } from '../../src/replay/index.js';
import { CALM } from '../helpers/app.js';
import { driveReplay, smallNight } from '../helpers/replay.js';
import { useTempDir } from '../helpers/tmp.js';

/** Room a goes on air at 10:01 and crashes at 10:08; room b opens a minute later on another account and half the audience follows. */
const scenario = smallNight('crash and reopen', { replayUntil: '10:19' }, {
  hostEnd: { afterMinutesLive: 60 },
  crashes: [{ room: 'a', at: '10:08', eject: 1, ends: true }],
  rooms: [{ name: 'b', host: 'Host B', account: '@b', opensAfter: { roomEnds: 'a', minutes: 1 }, endAfterMinutesLive: 8, migration: { from: 'a', share: 0.5, spreadMinutes: 2 } }],
});

/**
 * Polls the server while the replay runs. The replay stops its server as soon as the night ends,
 * which can be between the loop's check and the request: a refused or reset poll reads as no data
 * (the assertions below still demand that both rooms were seen).
 */
async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url);
    return await res.json();
  } catch {
    return {};
  }
}

describe('a replayed crash reaches the real server', () => {
  const recordings = useTempDir('stampede-crash-rec-');

  it('closes real listeners with 4003, they reconnect to the reopened room, and each room keeps a complete recording', async () => {
    const speed = 300; // 19 simulated minutes in 3.8 s of the manual clock
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const replay = createReplay({ scenario, seed: 1, speed, clock, logger: pino({ level: 'silent' }), server: { port: 0, host: '127.0.0.1', recordingDir: recordings() }, loadSignal: CALM, listeners: 12 });
    const started = await replay.start();
    const seen = new Map<string, number>(); // space → the most real listeners it had at once
    const result = await driveReplay(replay, clock, async (i, done) => {
      if (i % 10 !== 0 || done()) return;
      const status = (await getJson(`${started.url}/api/v1/replay`)) as { replay?: { spaceId: string } };
      const id = status.replay?.spaceId;
      if (!id) return;
      const space = (await getJson(`${started.url}/api/v1/spaces/${id}`)) as { space?: { listeners: { real: number } } };
      seen.set(id, Math.max(seen.get(id) ?? 0, space.space?.listeners.real ?? 0));
    });
    expect(result, 'the replay reached its end').not.toBeNull();
    const r = result!;
    expect(r.rooms.map((m) => [m.name, m.crashed])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    // the crash closed every real listener in room a with the documented, reconnectable code
    const crowd = replay.realCrowd()!;
    expect(crowd.closes[String(CLOSE.SPACE_CRASHED)]).toBeGreaterThan(0);
    // /api/v1/replay named a second space once the room reopened, and real listeners got into it
    const spaces = [...seen.keys()];
    expect(spaces[0]).toBe(started.spaceId);
    expect(spaces).toHaveLength(2);
    expect(seen.get(spaces[0]!)).toBeGreaterThan(0);
    expect(seen.get(spaces[1]!)).toBeGreaterThan(0);
    // each room's recording: published, a valid Ogg Opus file (pages in order, CRCs right), as long as the room was live
    expect(r.recordingAvailable).toBe(true);
    const files = (await readdir(recordings())).filter((f) => f.endsWith('.opus')).sort();
    expect(files.sort()).toEqual(spaces.map((id) => `${id}.opus`).sort());
    for (const [i, room] of r.rooms.entries()) {
      const file = await readFile(join(recordings(), `${spaces[i]}.opus`));
      const check = checkOggOpus(file);
      expect(check.problems).toEqual([]);
      const pages = check.audioPages;
      // the synthetic host sends a chunk every 100 ms of the clock: a room live for L simulated ms has about L/speed/100 of them
      const expected = (room.endedAt! - room.liveAt!) / speed / 100;
      expect(pages).toBeGreaterThanOrEqual(Math.floor(expected * 0.8));
      expect(pages).toBeLessThanOrEqual(Math.ceil(expected * 1.2) + 1);
    }
  });
});
