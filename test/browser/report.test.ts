import { pathToFileURL } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { buildReport, reportCharts, writeReport } from '../../src/report/index.js';
import { loadScenario, runReplay } from '../../src/sim/index.js';
import { artifactPath } from '../helpers/artifacts.js';
import { launchChromium } from '../helpers/browser.js';
import { useTempDir } from '../helpers/tmp.js';

describe('report.html in a real browser, offline', () => {
  let browser: BrowserContext;
  let closeBrowser: () => Promise<void>;
  const dir = useTempDir('stampede-report-html-');
  beforeAll(async () => {
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
  });

  it('opens from disk with the network blocked and shows every chart, at desktop and phone widths', async () => {
    const scenario = await loadScenario('scenarios/x-spaces-2024-08-12-ddos.yaml');
    const report = buildReport(await runReplay({ scenario, seed: 1, speed: 'max', clock: manualClock(0) }));
    const { htmlPath } = await writeReport(dir(), report);
    const page = await browser.newPage();
    const blocked: string[] = [];
    const errors: string[] = [];
    // everything but the file itself is refused: a report that needs the network shows it here
    await page.route('**/*', (route) => {
      if (route.request().url() === pathToFileURL(htmlPath).href) return route.continue();
      blocked.push(route.request().url());
      return route.abort();
    });
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    for (const [name, width] of [['desktop', 1280], ['phone', 390]] as const) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(pathToFileURL(htmlPath).href);
      for (const c of reportCharts(report)) {
        const box = await page.locator(`#${c.id} svg`).boundingBox();
        const frame = await page.locator(`#${c.id} .chart`).boundingBox();
        expect(box, c.id).not.toBeNull();
        // drawn at a readable size (on a phone it scrolls sideways in its own box, never the page)
        expect(box!.width).toBeGreaterThanOrEqual(Math.min(540, Math.min(width, 960) * 0.85));
        expect(frame!.x + frame!.width).toBeLessThanOrEqual(width);
        expect(box!.height).toBeGreaterThan(150);
        expect(await page.locator(`#${c.id} svg path`).count(), c.id).toBeGreaterThan(3);
      }
      expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1')).toBe(true);
      await page.screenshot({ path: await artifactPath(`report-${name}.png`), fullPage: true });
    }
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
