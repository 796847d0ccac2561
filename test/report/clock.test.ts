import { describe, expect, it } from 'vitest';
import { localClock, zoneLabel } from '../../src/report/index.js';
import { DASHBOARD_PAGE } from '../../src/server/dashboard.js';
import { LISTENER_PAGE } from '../../src/server/page.js';

/** One function of a page's script, by name, as the browser runs it (with `scope` as its free variables). */
function pageFunction<T extends (...args: never[]) => string>(html: string, name: string, scope: Record<string, unknown> = {}): T {
  const source = new RegExp(`function ${name}\\([^)]*\\) \\{[^\\n]*(?:\\n  [^\\n]*)*\\n?\\}`).exec(html)?.[0];
  if (!source) throw new Error(`no function ${name} in the page`);
  return new Function(...Object.keys(scope), `return (${source});`)(...Object.values(scope)) as T;
}

describe('clock times after midnight', () => {
  // 00:30 in New York on 13 Aug 2024 (EDT, UTC−4); ICU's hour12: false prints it as 24:30
  const halfPastMidnight = Date.UTC(2024, 7, 13, 4, 30);

  it('the report says 00:30, not 24:30, and 12:30 and 23:59 as they are', () => {
    expect(localClock(halfPastMidnight, 'America/New_York')).toBe('00:30');
    expect(localClock(Date.UTC(2024, 7, 12, 16, 30), 'America/New_York')).toBe('12:30');
    expect(localClock(Date.UTC(2024, 7, 13, 3, 59), 'America/New_York')).toBe('23:59');
  });

  it("the listener page's simulated clock and the live dashboard's clock say 00:30 too", () => {
    const simClock = pageFunction<(iso: string, zone: string) => string>(LISTENER_PAGE, 'simClock');
    expect(simClock(new Date(halfPastMidnight).toISOString(), 'America/New_York')).toBe('00:30 ET');
    const clock = pageFunction<(tSec: number) => string>(DASHBOARD_PAGE, 'clock', { meta: { timeZone: 'America/New_York' } });
    expect(clock(halfPastMidnight / 1000)).toBe('00:30');
  });
});

describe("the night's own time zone", () => {
  // 20:00 in New York on 12 Aug 2024 is 01:00 the next day in London (BST) and 17:00 in Los Angeles
  const eight = Date.UTC(2024, 7, 13, 0, 0);

  it('the CLI and the listener page print the clock in the zone they are given, named by it', () => {
    expect(`${localClock(eight, 'Europe/London')} ${zoneLabel(eight, 'Europe/London')}`).toBe('01:00 GMT+1');
    expect(`${localClock(eight, 'America/Los_Angeles')} ${zoneLabel(eight, 'America/Los_Angeles')}`).toBe('17:00 PT');
    expect(zoneLabel(eight, 'America/New_York')).toBe('ET');
    expect(zoneLabel(eight, 'UTC')).toBe('UTC');
    // in winter London is on GMT: the label follows the date, not the first one asked
    expect(zoneLabel(Date.UTC(2024, 0, 15, 12), 'Europe/London')).toBe('GMT');
    const simClock = pageFunction<(iso: string, zone?: string) => string>(LISTENER_PAGE, 'simClock');
    const iso = new Date(eight).toISOString();
    expect(simClock(iso, 'Europe/London')).toBe('01:00 GMT+1');
    expect(simClock(iso, 'America/Los_Angeles')).toBe('17:00 PT');
    // no replay has named a zone: UTC, and it says so
    expect(simClock(iso)).toBe('00:00 UTC');
  });
});
