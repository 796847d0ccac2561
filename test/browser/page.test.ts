import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { artifactPath } from '../helpers/artifacts.js';
import { launchChromium } from '../helpers/browser.js';
import { api, createSpace, settableGate, startApp, startSpace } from '../helpers/app.js';

describe('listener page in a real browser', () => {
  let browser: BrowserContext;
  let closeBrowser: () => Promise<void>;
  beforeAll(async () => {
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
  });

  it('joins the live space through the join path and shows counts and arriving audio', async () => {
    const s = await startApp({ demoSpace: true });
    try {
      const page = await browser.newPage();
      await page.goto(s.url + '/');
      await expect.poll(() => page.textContent('#status')).toBe('connected — listening');
      await expect.poll(async () => Number((await page.textContent('#chunks'))?.replace(/,/g, ''))).toBeGreaterThan(3);
      expect(await page.textContent('#title')).toBe('Stampede demo space');
      expect(await page.textContent('#gaps')).toBe('no gaps');
      await expect.poll(() => page.textContent('#split')).toBe('1 real · 0 modelled');
      await page.click('button[data-e="🔥"]');
      await expect.poll(() => page.textContent('#reactions')).toContain('🔥 1');
      await page.close();
    } finally {
      await s.close();
    }
  });

  it('a host page connects with its token as a subprotocol (never in the URL), and the server answers stampede.v1', async () => {
    const s = await startApp();
    try {
      const { id, hostToken } = await createSpace(s.url, 'browser host');
      await startSpace(s.url, id, hostToken);
      const page = await browser.newPage();
      await page.goto(s.url + '/');
      const got = await page.evaluate(
        ([host, id, token]) =>
          new Promise<{ protocol: string; first: string }>((resolve, reject) => {
            const ws = new WebSocket(`ws://${host}/ws?space=${id}`, ['stampede.v1', `stampede.host.${token}`]);
            ws.onmessage = (e) => {
              resolve({ protocol: ws.protocol, first: String(e.data) });
              ws.close();
            };
            ws.onerror = () => reject(new Error('the host socket failed'));
          }),
        [new URL(s.url).host, id, hostToken] as const,
      );
      expect(got.protocol).toBe('stampede.v1');
      expect(JSON.parse(got.first)).toMatchObject({ type: 'welcome', role: 'host' });
      await page.close();
    } finally {
      await s.close();
    }
  });

  it('shows "This Space is not available" when the join path fails, as listeners saw that night', async () => {
    const gate = settableGate();
    const s = await startApp({ demoSpace: true }, { replay: gate.view });
    try {
      gate.set({ availability: 0, latencyMs: 0 });
      const page = await browser.newPage();
      await page.goto(s.url + '/');
      await expect.poll(() => page.textContent('#status')).toContain('This Space is not available');
      // while failing, the page says which attempt failed and when the next one goes
      await expect.poll(() => page.textContent('#retry')).toMatch(/^attempt \d+ failed · next try in \d+\.\d s$|^attempt \d+…$/);
      expect(await page.getAttribute('#status', 'class')).toBe('bad');
      gate.set({ availability: 1, latencyMs: 0 });
      await expect.poll(() => page.textContent('#status'), { timeout: 15_000 }).toBe('connected — listening');
      await page.close();
    } finally {
      await s.close();
    }
  });

  it('waits in a scheduled space and follows it on air, keeping the host in view', async () => {
    const s = await startApp();
    try {
      const { id, hostToken } = await createSpace(s.url, 'later tonight');
      const host = (await api<{ space: { host: { name: string } } }>(s.url, 'GET', `/api/v1/spaces/${id}`)).body.space.host.name;
      const page = await browser.newPage();
      await page.goto(s.url + '/');
      await expect.poll(() => page.textContent('#status')).toBe('connected — listening');
      expect(await page.textContent('#sub')).toBe(`hosted by ${host} — scheduled`);
      await startSpace(s.url, id, hostToken, true);
      await expect.poll(() => page.textContent('#sub')).toBe(`hosted by ${host} — live`);
      await expect.poll(async () => Number((await page.textContent('#chunks'))?.replace(/,/g, ''))).toBeGreaterThan(3);
      await page.close();
    } finally {
      await s.close();
    }
  });

  it('says the recording was lost, and offers nothing to play, when its disk failed while the Space was live', async () => {
    const s = await startApp({}, { faults: { random: () => 0.5 } });
    try {
      const { id, hostToken } = await createSpace(s.url, 'on a failing disk');
      const disk = s.app.faults!.begin({ kind: 'failRecordingDisk', spaceId: id });
      await startSpace(s.url, id, hostToken, true);
      const page = await browser.newPage();
      await page.goto(s.url + '/');
      await expect.poll(() => page.textContent('#sub')).toMatch(/— live$/);
      await api(s.url, 'POST', `/api/v1/spaces/${id}/end`, {}, { authorization: `Bearer ${hostToken}` });
      s.app.faults!.end(disk);
      await expect.poll(() => page.textContent('#status')).toBe('the Space ended');
      await expect.poll(() => page.textContent('#ended-note')).toBe('The conversation is over. Its recording was lost: a write failed while it was live, so there is nothing to play.');
      expect(await page.isVisible('#recording')).toBe(false);
      expect(await page.isVisible('#recording-link')).toBe(false);
      await page.close();
    } finally {
      await s.close();
    }
  });

  it('plays the live Opus audio, then says the Space ended and plays the recording, as long as the Space was live', async () => {
    const s = await startApp({ demoSpace: true });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(s.url + '/');
      await expect.poll(() => page.textContent('#status')).toBe('connected — listening');
      await page.click('#listen');
      expect(await page.getAttribute('#listen', 'aria-pressed')).toBe('true');
      // WebCodecs decodes the synthetic host's Opus frames, 20 ms each
      await expect.poll(() => page.textContent('#audio-state'), { timeout: 15_000 }).toMatch(/^playing · ([5-9]\d|\d{3,}) frames decoded$/);
      await page.screenshot({ path: await artifactPath('listener-live.png'), fullPage: true });
      const space = s.app.server.spaces.list()[0]!;
      await expect.poll(() => Date.now() - space.startedAt!, { timeout: 20_000, interval: 200 }).toBeGreaterThan(12_000);
      await s.app.server.endSpace(space);
      const liveSeconds = (space.endedAt! - space.startedAt!) / 1000;
      await expect.poll(() => page.textContent('#status')).toBe('the Space ended');
      expect(await page.isVisible('#ended')).toBe(true);
      expect(await page.isVisible('#listen')).toBe(false);
      // the recording plays in an <audio> element: an Ogg Opus file whose duration is the time on air
      await expect.poll(() => page.evaluate("document.getElementById('recording').readyState"), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
      const duration = (await page.evaluate("document.getElementById('recording').duration")) as number;
      expect(Math.abs(duration - liveSeconds) / liveSeconds).toBeLessThan(0.02);
      await page.screenshot({ path: await artifactPath('listener-ended.png'), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await s.close();
    }
  }, 60_000);
});
