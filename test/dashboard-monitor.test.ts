// The dashboard over the real monitor: a StreamPerformanceMonitor on the real clock under a bounded,
// timer-driven load (three gRPC-method series, one with a hostile label; errors, cache, backpressure,
// connections, queue depth, worker utilisation) with a latency incident part-way, served by
// monitor.serve() and read in a real Chromium. Also takes the README's screenshot (docs/dashboard.png, with
// STREAMGAUGE_SCREENSHOT=docs: npm run docs:screenshot).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnomalyEvent,
  type PerformanceSummary,
  type Recorder,
  type Served,
  StreamPerformanceMonitor,
  type TickEvent,
} from '../src/index.js';
import { type Browser, launchChromium } from './fixtures/browser.js';
import {
  anomalyBandPixels,
  catchAlerts,
  injected,
  points,
  seriesPixels,
  watchPage,
} from './fixtures/dashboard-page.js';
import { lognormal, seededRandom } from './fixtures/random.js';
import { until } from './fixtures/wait.js';

const HOSTILE_LABEL = '<img src=x onerror=alert(1)>';
const HOSTILE_ERROR = '<b>boom</b>';
const METHODS = ['/chat.Chat/Stream', '/chat.Chat/Get', HOSTILE_LABEL];
const MB = 1024 * 1024;
const WAIT = { timeout: 15_000 };

// Ticks come every 50 ms so that the anomaly detector's learning period (its first 150 points) is
// over in seconds. The incident is placed by tick count, not by time: it starts well after the
// learning period and is long enough to be one incident, and p99 then jumps about tenfold from a
// level that only sampling noise moves, so the detector alarms on it whatever the machine's speed.
const TICK_MS = 50;
const INCIDENT_START_TICK = 180;
const INCIDENT_TICKS = 24;
/** Ticks of load before the screenshot (~14 s). */
const SCREENSHOT_TICK = INCIDENT_START_TICK + INCIDENT_TICKS + 80;

// ---------------------------------------------------------------------------------------------
// The load: one timer, deterministic pseudo-random figures of a chat service.

class Load {
  incident = false;
  /** Uniform in [0, 1). */
  private readonly random = seededRandom(0x2545f491);
  private step = 0;
  private open = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly methods: { rec: Recorder; perStep: number; medianMs: number; slowdown: number }[];

  constructor(private readonly monitor: StreamPerformanceMonitor) {
    this.methods = [
      { rec: monitor.series({ grpc_method: METHODS[0] }), perStep: 7, medianMs: 6, slowdown: 12 },
      { rec: monitor.series({ grpc_method: METHODS[1] }), perStep: 4, medianMs: 2.5, slowdown: 3 },
      { rec: monitor.series({ grpc_method: METHODS[2] }), perStep: 1, medianMs: 4, slowdown: 1 },
    ];
  }

  start(): void {
    this.timer = setInterval(() => this.run(), 5);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    const m = this.monitor;
    const s = ++this.step;
    for (const { rec, perStep, medianMs, slowdown } of this.methods) {
      for (let i = 0; i < perStep; i++) {
        const latency = lognormal(this.random, this.incident ? medianMs * slowdown : medianMs, 0.35, {
          radius: 'floor',
        });
        const u = this.random();
        if (u < 0.004) rec.recordError(HOSTILE_ERROR, latency);
        else if (u < 0.006) rec.recordError('UNAVAILABLE', latency);
        else rec.recordLatency(latency);
      }
    }
    for (let i = 0; i < 6; i++) {
      if (this.random() < 0.92) m.recordCacheHit();
      else m.recordCacheMiss();
    }
    if (this.random() < (this.incident ? 0.6 : 0.1)) m.recordBackpressureEvent(this.random() * 20);
    // Connections drift up and down, with some churn.
    const target = Math.round(48 + 16 * Math.sin(s / 400));
    if (this.random() < 0.2 && this.open > 0) {
      m.connectionClosed();
      m.connectionOpened();
    }
    while (this.open < target) {
      m.connectionOpened();
      this.open++;
    }
    while (this.open > target) {
      m.connectionClosed();
      this.open--;
    }
    const busy = this.incident ? 0.95 : 0.62 + 0.18 * Math.sin(s / 250) + 0.1 * (this.random() - 0.5);
    m.updateWorkerUtilization(Math.min(1, Math.max(0, busy)));
    m.updateQueueDepth(
      Math.max(0, Math.round((this.incident ? 24 : 6 + 4 * Math.sin(s / 150)) + 4 * (this.random() - 0.5))),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// What the monitor said at each tick, to compare with what the page shows for that tick's frame.

interface Seen {
  point: TickEvent['point'];
  summary: PerformanceSummary;
  /** Requests by series, keyed by the label values joined with ", " ('(all)' for no labels). */
  requests: Map<string, number>;
  errorsByType: Record<string, number>;
  anomalies: AnomalyEvent[];
}

function seriesKey(labels: Record<string, string>): string {
  const values = Object.values(labels);
  return values.length ? values.join(', ') : '(all)';
}

function observe(monitor: StreamPerformanceMonitor, load: Load) {
  const seen = new Map<number, Seen>();
  const state = { ticks: 0, incidentStart: Number.NaN, incidentEnd: Number.NaN };
  monitor.on('tick', (tick: TickEvent) => {
    state.ticks++;
    if (state.ticks === INCIDENT_START_TICK) {
      load.incident = true;
      state.incidentStart = tick.t;
    } else if (state.ticks === INCIDENT_START_TICK + INCIDENT_TICKS) {
      load.incident = false;
      state.incidentEnd = tick.t;
    }
    const requests = new Map<string, number>();
    for (const s of monitor.seriesList()) {
      const n = monitor.totals(s.index).requests;
      if (n > 0) requests.set(seriesKey(s.labels), n);
    }
    seen.set(tick.t, {
      point: tick.point,
      summary: monitor.getPerformanceSummary(),
      requests,
      errorsByType: monitor.errorsByType(),
      anomalies: monitor.recentAnomalies().map((a) => ({ ...a })),
    });
    // Bounded: the page is never more than a few ticks behind.
    if (seen.size > 400) seen.delete(seen.keys().next().value as number);
  });
  return { seen, state };
}

// ---------------------------------------------------------------------------------------------
// Reading the page

/** A displayed figure ("1,843 /s", "17.9 ms", "99.4 %") as a number and half its last digit. */
function figure(text: string | null | undefined): { value: number; half: number } {
  const m = /^-?[\d,]*\.?\d+/.exec((text ?? '').trim());
  if (!m) return { value: Number.NaN, half: 0 };
  const digits = m[0].replace(/,/g, '');
  const dot = digits.indexOf('.');
  return { value: Number(digits), half: 0.5 * 10 ** -(dot < 0 ? 0 : digits.length - dot - 1) };
}

/** `text` shows `actual` to its displayed precision (plus `slack`, for figures read a moment apart). */
function shows(text: string | null | undefined, actual: number, what: string, slack = 0): void {
  const { value, half } = figure(text);
  assert.ok(Number.isFinite(actual), `${what}: the monitor has a value (${actual})`);
  assert.ok(
    Math.abs(value - actual) <= half + slack + 1e-9 * Math.abs(actual),
    `${what}: the page shows ${JSON.stringify(text)}, the monitor ${actual}`,
  );
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

interface PageState {
  frameT: number;
  frames: number;
  rpsFigure: string;
  summary: Record<string, string[]>;
  series: { labels: string; requests: string }[];
  errors: { type: string; count: string }[];
  anomalies: string[][];
}

/** Everything compared, read in one go so that it all belongs to the last frame the page received. */
function readPage(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    const w = window as unknown as { __frameT: number; __frames: number };
    const table = (id: string) =>
      Array.from(document.querySelectorAll<HTMLTableRowElement>(`#${id} tbody tr`)).map((tr) => Array.from(tr.cells));
    const summary: Record<string, string[]> = {};
    for (const [name, ...rest] of table('summary'))
      summary[name.textContent ?? ''] = rest.map((c) => c.textContent ?? '');
    return {
      frameT: w.__frameT,
      frames: w.__frames,
      rpsFigure: document.querySelector('[data-chart="rps"] .figure')?.textContent ?? '',
      summary,
      series: table('series').map(([labels, requests]) => {
        const chips = Array.from(labels.querySelectorAll('.chip .v')).map((v) => v.textContent ?? '');
        return {
          labels: chips.length ? chips.join(', ') : (labels.textContent ?? ''),
          requests: requests?.textContent ?? '',
        };
      }),
      errors: table('errors').map(([type, count]) => ({
        type: type.textContent ?? '',
        count: count?.textContent ?? '',
      })),
      anomalies: table('anomalies').map((cells) => cells.map((c) => c.textContent ?? '')),
    };
  });
}

/** Waits for `n` more SSE frames, then reads the page. */
async function nextFrames(page: Page, n: number): Promise<PageState> {
  const before = await page.evaluate(() => (window as unknown as { __frames: number }).__frames);
  await page.waitForFunction(
    (count) => (window as unknown as { __frames: number }).__frames >= count,
    before + n,
    WAIT,
  );
  return readPage(page);
}

const SCALE: Record<string, number> = { errorRate: 100, memoryBytes: 1 / MB };

// ---------------------------------------------------------------------------------------------

test('the real monitor under load, in Chromium: charts, SSE, escaping, summary, anomalies, ranges', async () => {
  const monitor = new StreamPerformanceMonitor({ logger: false, collectionInterval: TICK_MS });
  const load = new Load(monitor);
  const { seen, state } = observe(monitor, load);
  let served: Served | undefined;
  let browser: Browser | undefined;
  try {
    load.start();
    served = await monitor.serve();
    assert.is(served.host, '127.0.0.1');
    const requests: string[] = [];
    served.server.on('request', (req) => requests.push(req.url ?? ''));

    browser = await launchChromium({ width: 1440, height: 900 });
    const page = browser.page;
    const { dialogs, problems } = watchPage(page);
    // tsx compiles this file keeping function names, through a `__name` helper that the page's
    // copies of the functions below also call: the page gets a do-nothing one.
    await page.addInitScript({ content: 'globalThis.__name = (f) => f;' });
    await catchAlerts(page);
    await page.addInitScript(() => {
      const w = window as unknown as { __frameT: number; __frames: number };
      w.__frameT = Number.NaN;
      w.__frames = 0;
      // Notes the time of each SSE frame. Added before the page's own listener, so when the page
      // has drawn a frame this already names it.
      const Native = window.EventSource;
      window.EventSource = class extends Native {
        constructor(url: string | URL, init?: EventSourceInit) {
          super(url, init);
          this.addEventListener('tick', (e) => {
            w.__frameT = (JSON.parse((e as MessageEvent).data) as { t: number }).t;
            w.__frames++;
          });
        }
      };
    });

    await page.goto(`${served.url}/`, { waitUntil: 'load', ...WAIT });
    await page.waitForSelector('#status[data-state="live"]', WAIT);
    await page.waitForSelector('body[data-loaded="5m"]', WAIT);

    // Values move with the SSE frames, and the chart's figure is the monitor's tick point.
    const first = await nextFrames(page, 1);
    const later = await page.waitForFunction(
      (before) => document.querySelector('[data-chart="rps"] .figure')?.textContent !== before,
      first.rpsFigure,
      WAIT,
    );
    await later.dispose();
    const live = await nextFrames(page, 2);
    assert.ok(live.frames > first.frames);
    const atFrame = seen.get(live.frameT);
    assert.ok(atFrame, `the page's frame (t=${live.frameT}) is one of the monitor's ticks`);
    shows(live.rpsFigure, atFrame.point.rps, 'rps chart figure');

    // The summary and targets: the monitor's own figures for that frame. Throughput is a rate over
    // the window ending at the clock's now, which may move by a millisecond between the two reads
    // of the same tick (the test's and the dashboard's): hence 0.1 % of slack for it.
    const s = atFrame.summary;
    const row = (name: string) => {
      const cells = live.summary[name];
      assert.ok(cells, `summary row ${name}: ${JSON.stringify(Object.keys(live.summary))}`);
      return cells;
    };
    shows(row('Throughput')[0], s.throughputRps, 'throughput', s.throughputRps * 1e-3);
    assert.is(row('Throughput')[1], '2,000 /s');
    shows(row('Latency p95')[0], s.p95LatencyMs, 'p95');
    assert.is(row('Latency p95')[1], '25 ms');
    shows(row('Memory')[0], s.memoryUsageMb, 'memory');
    shows(row('Success rate')[0], s.successRate * 100, 'success rate');
    shows(row('Connections')[0], s.activeConnections, 'connections');
    shows(row('Worker utilisation')[0], s.workerUtilization * 100, 'worker utilisation');
    shows(row('Cache efficiency')[0], s.cacheEfficiency * 100, 'cache efficiency');
    assert.ok(s.successRate < 1 && s.successRate > 0.98, `errors are counted (${s.successRate})`);

    // Per-series table: exactly the series with requests, hostile label as text, exact counts.
    const shownSeries = new Map(live.series.map((r) => [r.labels, figure(r.requests).value]));
    assert.equal(new Set(shownSeries.keys()), new Set(METHODS), 'the three recorded series');
    assert.equal(shownSeries, atFrame.requests, 'requests per series, as the monitor counts them');
    // Errors by type: the hostile type as text, counts as the monitor's.
    const shownErrors = Object.fromEntries(live.errors.map((r) => [r.type, figure(r.count).value]));
    assert.equal(shownErrors, atFrame.errorsByType);
    assert.ok(HOSTILE_ERROR in shownErrors, 'error type shown as text');
    const labelTexts = await page.$$eval('#series .chip .v', (els) => els.map((e) => e.textContent));
    assert.ok(labelTexts.includes(HOSTILE_LABEL), 'label shown as text');

    // Last hour and last day come from rollups, which a young monitor may not have yet: the page
    // says so, draws what there is and keeps going; then back to the five minutes.
    for (const [range, resolution] of [
      ['1h', 'minute'],
      ['1d', 'hour'],
      ['5m', 'tick'],
    ] as const) {
      await page.click(`.range button[data-range="${range}"]`);
      await page.waitForSelector(`body[data-loaded="${range}"]`, WAIT);
      assert.is(await page.getAttribute(`.range button[data-range="${range}"]`, 'aria-pressed'), 'true');
      assert.ok(
        requests.some((u) => u.startsWith(`/api/history?resolution=${resolution}&since=`)),
        `${range} asked for ${resolution}`,
      );
      const n = await points(page, 'rps');
      const held = monitor.getHistory({ resolution }).t.length;
      if (resolution === 'tick') assert.ok(n > 20, `5m: ${n} points`);
      else assert.ok(n <= held, `${range}: ${n} points of ${held} rollups`);
      const notice = await page.$eval('#notice', (el) => ({
        hidden: (el as HTMLElement).hidden,
        text: el.textContent ?? '',
      }));
      if (n === 0) assert.match(notice.text, `No ${resolution} rollups yet`);
      else assert.ok(notice.hidden, `${range}: no notice (${notice.text})`);
      // Frames keep coming and the tables keep being filled meanwhile.
      const after = await nextFrames(page, 2);
      assert.ok(after.series.length === 3, `${range}: series table still filled`);
    }

    // The incident: the detector's finding reaches the list and the latency chart.
    await until(
      'the latency incident to be detected',
      60_000,
      () =>
        seen.size > 0 &&
        Number.isFinite(state.incidentEnd) &&
        monitor.recentAnomalies().some((a) => isLatencyIncident(a, state)),
      25,
    );
    await until('enough ticks after the incident', 60_000, () => state.ticks >= SCREENSHOT_TICK, 25);
    const now = await nextFrames(page, 2);
    const expected = seen.get(now.frameT);
    assert.ok(expected, 'the frame is one of the ticks');
    const anomalies = [...expected.anomalies].sort((a, b) => b.start - a.start);
    assert.ok(
      anomalies.some((a) => isLatencyIncident(a, state)),
      'the latency incident is in the frame',
    );
    assert.is(now.anomalies.length, anomalies.length, `one row per anomaly: ${JSON.stringify(now.anomalies)}`);
    anomalies.forEach((a, i) => {
      const [since, series, peak, , , status] = now.anomalies[i];
      assert.is(since, clock(a.start));
      assert.is(series, `${a.series} ${a.direction === 'down' ? '▼' : '▲'}`);
      shows(peak, a.peak * (SCALE[a.series] ?? 1), `${a.series} anomaly peak`);
      assert.is(status, a.end === undefined ? 'ongoing' : `ended ${clock(a.end)}`);
    });
    // A short incident on a wide time axis may be a thin band: any shading counts.
    assert.ok((await anomalyBandPixels(page, 'latency')) > 0, 'the incident is shaded on the latency chart');

    // Charts draw from real data: every canvas carries its series colour.
    const pixels = await seriesPixels(page);
    assert.is(Object.keys(pixels).length, 10, 'ten charts');
    for (const [chart, count] of Object.entries(pixels))
      assert.ok(count > 40, `${chart} chart drew its line (${count} px)`);

    // Hostile strings stayed text: nothing they spell exists as an element or ran.
    assert.equal(await injected(page), { imgs: 0, bolds: 0, scripts: 2, alerts: [] });
    assert.equal(dialogs, []);
    const unexpected = problems.filter((p) => !/willReadFrequently/i.test(p));
    assert.equal(unexpected, [], 'no page errors, no CSP violations');

    // The README's screenshot is refreshed on request (npm run docs:screenshot); otherwise it goes to a temporary directory.
    const docs = process.env.STREAMGAUGE_SCREENSHOT === 'docs';
    const shot = docs
      ? fileURLToPath(new URL('../docs/dashboard.png', import.meta.url))
      : join(browser.tmpRoot, 'dashboard.png');
    if (docs) await mkdir(fileURLToPath(new URL('../docs/', import.meta.url)), { recursive: true });
    await page.mouse.move(0, 0);
    await page.screenshot({ path: shot, fullPage: true, timeout: 15_000 });
  } finally {
    load.stop();
    // The browser goes before the server, so it does not spend its last moments reconnecting.
    await browser?.close();
    await served?.close();
    monitor.close();
  }
});

/** A latency anomaly (p95 or p99, upwards) that overlaps the incident. */
function isLatencyIncident(a: AnomalyEvent, state: { incidentStart: number; incidentEnd: number }): boolean {
  return (
    (a.series === 'p99' || a.series === 'p95') &&
    a.direction === 'up' &&
    a.start <= state.incidentEnd &&
    (a.end === undefined || a.end >= state.incidentStart)
  );
}

test.run();
