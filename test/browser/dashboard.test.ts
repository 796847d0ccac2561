import type { BrowserContext, Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createReplay } from '../../src/replay/index.js';
import { loadScenario } from '../../src/sim/index.js';
import { artifactPath } from '../helpers/artifacts.js';
import { launchChromium } from '../helpers/browser.js';
import { CALM } from '../helpers/app.js';
import { replayStep } from '../helpers/replay.js';
import { useTempDir } from '../helpers/tmp.js';

const attr = (page: Page, sel: string, name: string): Promise<number> => page.getAttribute(sel, name).then((v) => Number(v ?? 0));

describe('the live dashboard in a real browser', () => {
  let browser: BrowserContext;
  let closeBrowser: () => Promise<void>;
  const recordings = useTempDir('stampede-dash-rec-');
  beforeAll(async () => {
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
  });

  it('follows a replay: the clock advances, points are added, events and facts are drawn, no console errors', async () => {
    const scenario = await loadScenario('scenarios/x-spaces-2024-08-12.yaml', ['event.replayUntil=21:05', 'assumptions.hostEnd.afterMinutesLive=15']);
    // the replay runs on a manual clock the test moves; the browser polls on real time
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const replay = createReplay({ scenario, seed: 1, speed: 600, clock, logger: pino({ level: 'silent' }), server: { port: 0, host: '127.0.0.1', recordingDir: recordings() }, loadSignal: CALM, listeners: 5 });
    const { url } = await replay.start();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    // simulated minutes pass: 600× makes one minute 100 ms of the manual clock
    const play = async (simMinutes: number): Promise<void> => {
      for (let i = 0; i < simMinutes * 5; i++) await replayStep(clock);
    };
    try {
      await play(20); // to 20:05: the storm has begun
      await page.setViewportSize({ width: 1280, height: 1000 });
      await page.goto(`${url}/dashboard`);
      await expect.poll(() => page.textContent('#clock')).toMatch(/^20:0\d$/);
      await expect.poll(() => attr(page, '#chart-listeners', 'data-points')).toBeGreaterThan(100);
      const before = await attr(page, '#chart-listeners', 'data-points');
      // scheduled start, space opened, failing; the on-air band, ≥ 1M by 20:50, the peak range
      expect(await attr(page, '#chart-listeners .uplot', 'data-markers')).toBeGreaterThanOrEqual(3);
      expect(await attr(page, '#chart-listeners .uplot', 'data-facts')).toBe(3);
      expect(await attr(page, '#chart-availability .uplot', 'data-facts')).toBe(2); // on-air band and the failure band
      await play(45); // to 20:50: on air
      await expect.poll(() => page.textContent('#clock'), { timeout: 10_000 }).toMatch(/^20:(4\d|5\d)$/);
      await expect.poll(() => attr(page, '#chart-listeners', 'data-points')).toBeGreaterThan(before + 200);
      await expect.poll(() => page.textContent('#events')).toContain('host started');
      expect(await attr(page, '#chart-traffic .uplot', 'data-markers')).toBeGreaterThanOrEqual(5);
      // the keyboard walks a chart's samples
      await page.focus('#chart-listeners');
      await page.keyboard.press('End');
      expect(await page.textContent('#chart-listeners .readout')).toMatch(/^20:\d\d — modelled \d/);
      await page.keyboard.press('ArrowLeft');
      expect(await page.textContent('#chart-listeners .readout')).toMatch(/^20:\d\d — modelled/);
      await page.screenshot({ path: await artifactPath('dashboard-desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await expect.poll(async () => (await page.locator('#chart-listeners canvas').boundingBox())!.width).toBeLessThanOrEqual(390);
      expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1')).toBe(true);
      await page.screenshot({ path: await artifactPath('dashboard-phone.png'), fullPage: true });
      expect(errors).toEqual([]);
      // everything the page loaded came from Stampede itself
      expect(requests.filter((r) => !r.startsWith(url!) && !r.startsWith('data:'))).toEqual([]);
    } finally {
      await page.close();
      await replay.stop();
    }
  }, 90_000);
});
