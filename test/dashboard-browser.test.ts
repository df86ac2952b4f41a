// The live dashboard's page in a real Chromium, over the synthetic source of the HTTP tests:
// charts draw, SSE updates them, hostile text stays text, ranges switch.

import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { launchChromium } from './fixtures/browser.js';
import {
  anomalyBandPixels,
  catchAlerts,
  injected,
  points,
  seriesPixels,
  watchPage,
} from './fixtures/dashboard-page.js';
import { until } from './fixtures/wait.js';
import { HOSTILE_ERROR, HOSTILE_LABEL, withServer } from './fixtures/dashboard-harness.js';

// ---------------------------------------------------------------------------------------------
// The page in Chromium

const WAIT = { timeout: 15_000 };

test('in Chromium: charts draw, SSE updates them, hostile text stays text, ranges switch', async () => {
  await withServer(
    { retryMs: 300 },
    async ({ base, requests, eventSockets }) => {
      const browser = await launchChromium();
      try {
        const page = browser.page;
        const { dialogs, problems } = watchPage(page);
        await catchAlerts(page);

        await page.goto(`${base}/`, { waitUntil: 'load', ...WAIT });
        await page.waitForSelector('#status[data-state="live"]', WAIT);
        await page.waitForSelector('body[data-loaded="5m"]', WAIT);
        assert.ok((await points(page, 'rps')) >= 290, 'tick history loaded');

        // Charts draw: every canvas carries its series colour.
        const pixels = await seriesPixels(page);
        assert.is(Object.keys(pixels).length, 10, 'ten charts');
        for (const [chart, count] of Object.entries(pixels))
          assert.ok(count > 40, `${chart} chart drew its line (${count} px)`);
        assert.ok((await anomalyBandPixels(page, 'latency')) > 200, 'the p99 spike is shaded on the latency chart');

        // Values move with the SSE frames.
        const figure = '[data-chart="rps"] .figure';
        const firstFigure = await page.textContent(figure);
        const firstUpdated = await page.textContent('#updated');
        await page.waitForFunction(
          ([sel, before]) => document.querySelector(sel)?.textContent !== before,
          [figure, firstFigure] as const,
          WAIT,
        );
        await page.waitForFunction(
          (before) => document.getElementById('updated')?.textContent !== before,
          firstUpdated,
          WAIT,
        );
        assert.match((await page.textContent(figure)) ?? '', /^\d[\d,.]* \/s$/);

        // Hostile strings are shown as text; nothing they spell exists as an element or ran.
        const labelTexts = await page.$$eval('#series .chip .v', (els) => els.map((e) => e.textContent));
        assert.ok(labelTexts.includes(HOSTILE_LABEL), `label shown as text: ${JSON.stringify(labelTexts)}`);
        const errorTypes = await page.$$eval('#errors td.type', (els) => els.map((e) => e.textContent));
        assert.ok(errorTypes.includes(HOSTILE_ERROR), 'error type shown as text');
        const anomalySeries = await page.$$eval('#anomalies td.type', (els) => els.map((e) => e.textContent ?? ''));
        assert.ok(
          anomalySeries.some((s) => s.includes(HOSTILE_LABEL)),
          'anomaly series shown as text',
        );
        assert.ok(
          anomalySeries.some((s) => s.startsWith('p99')),
          'the latency anomaly is listed',
        );
        assert.equal(await injected(page), { imgs: 0, bolds: 0, scripts: 2, alerts: [] });
        assert.equal(dialogs, []);

        // Time ranges: the hour from minute rollups, the day from hour rollups, and back.
        for (const [range, resolution, min, max] of [
          ['1h', 'minute', 55, 70],
          ['1d', 'hour', 20, 30],
          ['5m', 'tick', 250, 320],
        ] as const) {
          await page.click(`.range button[data-range="${range}"]`);
          await page.waitForSelector(`body[data-loaded="${range}"]`, WAIT);
          assert.is(await page.getAttribute(`.range button[data-range="${range}"]`, 'aria-pressed'), 'true');
          const n = await points(page, 'rps');
          assert.ok(n >= min && n <= max, `${range}: ${n} points`);
          assert.ok(
            requests.some((u) => u.startsWith(`/api/history?resolution=${resolution}&since=`)),
            `${range} asked for ${resolution}`,
          );
          assert.ok((await seriesPixels(page)).rps > 40, `${range}: chart drawn`);
        }
        assert.ok((await anomalyBandPixels(page, 'latency')) > 200, 'band drawn again in the 5-minute view');

        // The stream drops: the page shows it, reconnects on its own and resumes.
        const connections = requests.filter((u) => u === '/events').length;
        for (const socket of eventSockets) socket.destroy();
        await until(
          'the browser to reconnect',
          10_000,
          () => requests.filter((u) => u === '/events').length > connections,
          20,
        );
        await page.waitForSelector('#status[data-state="live"]', WAIT);
        const afterReconnect = await page.textContent('#updated');
        await page.waitForFunction(
          (before) => document.getElementById('updated')?.textContent !== before,
          afterReconnect,
          WAIT,
        );

        // The stream drop itself logs a network error in the console; anything else is a bug.
        // (The test's own pixel reads draw a Canvas2D readback hint.)
        const unexpected = problems.filter((p) => !/events|ERR_|EventSource|willReadFrequently/i.test(p));
        assert.equal(unexpected, [], 'no page errors, no CSP violations');

        // The README's screenshot comes from the real monitor (dashboard-monitor.test.ts); this one
        // only proves the synthetic page renders to an image.
        await page.mouse.move(0, 0);
        await page.screenshot({ path: join(browser.tmpRoot, 'dashboard.png'), fullPage: true, timeout: 15_000 });
      } finally {
        // The browser goes before the server, so it does not spend its last moments reconnecting.
        await browser.close();
      }
    },
    250,
  );
});

test.run();
