import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localToUtcMs, loadScenario, parseScenario, ScenarioError } from '../../src/sim/index.js';

const DEFAULT = 'scenarios/x-spaces-2024-08-12.yaml';
const DDOS = 'scenarios/x-spaces-2024-08-12-ddos.yaml';

async function issuesOf(p: Promise<unknown>): Promise<{ path: string; message: string }[]> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as ScenarioError).code).toBe('SCENARIO_INVALID');
    return (err as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('scenario files', () => {
  let dir: string;
  let text: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stampede-scn-'));
    text = (await import('node:fs')).readFileSync(DEFAULT, 'utf8');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads both shipped accounts, resolving local times in the event time zone', async () => {
    const s = await loadScenario(DEFAULT);
    expect(new Date(s.scheduledStartMs).toISOString()).toBe('2024-08-13T00:00:00.000Z'); // 20:00 EDT
    expect(s.assumptions.attack).toBeNull();
    const d = await loadScenario(DDOS);
    expect(d.assumptions.attack?.keyframes.length).toBeGreaterThan(0);
    expect(d.expect).toEqual(s.expect); // the same facts score both accounts
  });

  it('converts clock times across a DST change', () => {
    expect(new Date(localToUtcMs('2024-03-10', '03:30', 'America/New_York')).toISOString()).toBe('2024-03-10T07:30:00.000Z');
    expect(new Date(localToUtcMs('2024-01-10', '20:00', 'America/New_York')).toISOString()).toBe('2024-01-11T01:00:00.000Z');
    // 02:30 does not occur on 10 March 2024 in New York (02:00 EST is 03:00 EDT): it reads as 03:30 EDT, not 01:30 EST
    expect(new Date(localToUtcMs('2024-03-10', '02:30', 'America/New_York')).toISOString()).toBe('2024-03-10T07:30:00.000Z');
    expect(new Date(localToUtcMs('2024-03-10', '01:59', 'America/New_York')).toISOString()).toBe('2024-03-10T06:59:00.000Z');
    // 01:30 occurs twice on 3 November 2024 (EDT, then EST): the first
    expect(new Date(localToUtcMs('2024-11-03', '01:30', 'America/New_York')).toISOString()).toBe('2024-11-03T05:30:00.000Z');
    expect(new Date(localToUtcMs('2024-11-03', '02:30', 'America/New_York')).toISOString()).toBe('2024-11-03T07:30:00.000Z');
    // a zone east of UTC, and one with a half-hour offset and no DST
    expect(new Date(localToUtcMs('2024-03-31', '02:30', 'Europe/Berlin')).toISOString()).toBe('2024-03-31T01:30:00.000Z');
    expect(new Date(localToUtcMs('2024-08-12', '20:00', 'Asia/Kolkata')).toISOString()).toBe('2024-08-12T14:30:00.000Z');
  });

  it('rejects an unknown field, naming its path', async () => {
    const bad = text.replace('  collapse: 0.08', '  collapse: 0.08\n    colapse: 1');
    const issues = await issuesOf(Promise.resolve().then(() => parseScenario(bad, 'x.yaml')));
    expect(issues).toEqual([{ path: 'assumptions.capacity', message: expect.stringContaining('colapse') }]);
  });

  it('gives the model\'s named assumptions their documented defaults, and rejects an immediate-retry window backwards', async () => {
    const s = await loadScenario(DEFAULT);
    expect(s.assumptions.capacity.sheddingGoodput).toBe(0.85);
    expect(s.assumptions.clients.retry.immediateSeconds).toEqual([1, 3]);
    expect(s.assumptions.failingBelow).toBe(0.5);
    expect(await issuesOf(loadScenario(DEFAULT, ['assumptions.clients.retry.immediateSeconds=[4, 2]']))).toEqual([
      { path: 'assumptions.clients.retry.immediateSeconds[1]', message: 'expected at least 4 (the first second)' },
    ]);
  });

  it('rejects a wrong type, saying what was expected', async () => {
    const bad = text.replace('sessionMinutes: 240', 'sessionMinutes: "long"');
    const issues = await issuesOf(Promise.resolve().then(() => parseScenario(bad, 'x.yaml')));
    expect(issues[0]!.path).toBe('assumptions.clients.sessionMinutes');
    expect(issues[0]!.message).toMatch(/expected number/);
  });

  it('rejects keyframes out of order and a malformed time', async () => {
    const bad = text.replace('{ at: "20:05", perSecond: 2000 }', '{ at: "19:30", perSecond: 2000 }');
    const issues = await issuesOf(Promise.resolve().then(() => parseScenario(bad, 'x.yaml')));
    expect(issues).toEqual([{ path: 'assumptions.demand.keyframes[4].at', message: 'expected a time after 20:00 (the previous keyframe)' }]);
    const bad2 = text.replace('scheduledStart: "20:00"', 'scheduledStart: "8pm"');
    const issues2 = await issuesOf(Promise.resolve().then(() => parseScenario(bad2, 'x.yaml')));
    expect(issues2[0]).toEqual({ path: 'event.scheduledStart', message: 'expected a local time like "20:42"' });
  });

  it('applies --set overrides before validation, and names a path that does not exist', async () => {
    const s = await loadScenario(DEFAULT, ['assumptions.capacity.keyframes[0].joinsPerSecond=5000', 'assumptions.clients.retry.policy=jittered']);
    expect(s.assumptions.capacity.keyframes[0]!.joinsPerSecond).toBe(5000);
    expect(s.assumptions.clients.retry.policy).toBe('jittered');
    expect(await issuesOf(loadScenario(DEFAULT, ['assumptions.capacty.collapse=0']))).toEqual([
      { path: 'assumptions.capacty.collapse', message: "no parameter 'assumptions.capacty' in this scenario" },
    ]);
    expect((await issuesOf(loadScenario(DEFAULT, ['assumptions.clients.retry.policy=sometimes'])))[0]!.path).toBe('assumptions.clients.retry.policy');
    expect(await issuesOf(loadScenario(DEFAULT, ['novalue']))).toEqual([{ path: 'novalue', message: expect.stringContaining('path=value') }]);
  });

  it('names unreadable and unparsable files', async () => {
    expect(await issuesOf(loadScenario(join(dir, 'missing.yaml')))).toEqual([{ path: '(file)', message: 'cannot read: ENOENT' }]);
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'event: [unclosed');
    expect((await issuesOf(loadScenario(broken)))[0]!.message).toMatch(/^not valid YAML/);
  });

  it('loads the second incident: two rooms, a crash that ends the first, facts with sources and held-out ones', async () => {
    const s = await loadScenario('scenarios/twitter-spaces-2023-05-24-desantis.yaml');
    expect([s.event.room, ...s.assumptions.rooms.map((r) => r.name)]).toEqual(['musk', 'sacks']);
    expect(s.assumptions.crashes[0]).toMatchObject({ room: 'musk', ends: true });
    expect(s.expect.every((x) => x.source.length > 10)).toBe(true);
    expect(s.expect.filter((x) => x.holdOut).length).toBeGreaterThan(0);
    expect(s.expect.filter((x) => !x.holdOut).length).toBeGreaterThan(s.expect.filter((x) => x.holdOut).length);
  });
});
