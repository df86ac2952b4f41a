// The live dashboard: its HTTP surface, then the page in a real Chromium, over a synthetic source
// that ticks on a timer (one simulated second per tick) and keeps tick/minute/hour history.

import { createServer, get, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnomalyMark,
  createDashboardHandler,
  DASHBOARD_FIELDS,
  type DashboardField,
  type DashboardFrame,
  type DashboardOptions,
  type DashboardSource,
  type HistoryColumns,
  type Resolution,
  type SeriesRow,
} from '../src/dashboard.js';
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

const HOSTILE_LABEL = '<img src=x onerror=alert(1)>';
const HOSTILE_ERROR = '<b>boom</b><script>alert(2)</script>';
const MB = 1024 * 1024;
const T0 = Date.UTC(2025, 5, 2, 14, 30, 0);

// ---------------------------------------------------------------------------------------------
// A synthetic monitor: deterministic noise around realistic levels for a gRPC streaming service.

type Point = Record<DashboardField, number>;

class Columns {
  t: number[] = [];
  fields = Object.fromEntries(DASHBOARD_FIELDS.map((f) => [f, [] as number[]])) as Record<DashboardField, number[]>;

  push(t: number, p: Point): void {
    this.t.push(t);
    for (const f of DASHBOARD_FIELDS) this.fields[f].push(p[f]);
  }

  since(resolution: Resolution, sinceMs = -Infinity): HistoryColumns {
    let i = 0;
    while (i < this.t.length && this.t[i] < sinceMs) i++;
    const fields = Object.fromEntries(
      DASHBOARD_FIELDS.map((f) => [f, this.fields[f].slice(i)]),
    ) as HistoryColumns['fields'];
    return { resolution, t: this.t.slice(i), fields };
  }
}

class SyntheticSource implements DashboardSource {
  now = T0;
  private seed = 42;
  private readonly ticks = new Columns();
  private readonly minutes = new Columns();
  private readonly hours = new Columns();
  private readonly listeners = new Set<(frame: DashboardFrame) => void>();
  private timer: NodeJS.Timeout | undefined;
  private requests = 1_250_000;
  private errors: Record<string, number> = { UNAVAILABLE: 212, DEADLINE_EXCEEDED: 87, [HOSTILE_ERROR]: 5 };
  private last: Point;
  readonly anomalies: AnomalyMark[] = [
    // A latency spike two minutes ago (inside the 5-minute view), now over.
    {
      series: 'p99',
      value: 96,
      expectedLow: 24,
      expectedHigh: 41,
      score: 4.8,
      direction: 'up',
      start: T0 - 130_000,
      end: T0 - 112_000,
    },
    // A throughput dip half an hour ago (visible in the hour view).
    {
      series: 'rps',
      value: 940,
      expectedLow: 1650,
      expectedHigh: 2150,
      score: 3.1,
      direction: 'down',
      start: T0 - 35 * 60_000,
      end: T0 - 31 * 60_000,
    },
    // A name that is not a chart field (only listed), carrying markup.
    {
      series: `p99{grpc_method="${HOSTILE_LABEL}"}`,
      value: 60,
      expectedLow: 10,
      expectedHigh: 30,
      score: 2.6,
      direction: 'up',
      start: T0 - 20_000,
    },
  ];

  constructor() {
    for (let h = 24; h >= 1; h--) this.hours.push(T0 - h * 3_600_000, this.pointAt(T0 - h * 3_600_000));
    for (let m = 60; m >= 1; m--) this.minutes.push(T0 - m * 60_000, this.pointAt(T0 - m * 60_000));
    for (let s = 299; s >= 0; s--) this.ticks.push(T0 - s * 1000, this.pointAt(T0 - s * 1000));
    this.last = this.pointAt(T0);
  }

  /** Deterministic noise in [-1, 1]. */
  private noise(): number {
    this.seed = (this.seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return (this.seed / 2_147_483_648) * 2 - 1;
  }

  private pointAt(t: number): Point {
    const wave = Math.sin((t / 420_000) * 2 * Math.PI);
    const slow = Math.sin((t / 7_200_000) * 2 * Math.PI);
    const spike = this.anomalies.some((a) => a.series === 'p99' && t >= a.start && t <= (a.end ?? Infinity));
    const dip = this.anomalies.some((a) => a.series === 'rps' && t >= a.start && t <= (a.end ?? Infinity));
    const ageS = (T0 - t) / 1000;
    return {
      rps: (dip ? 950 : 1850 + 220 * wave) + 70 * this.noise(),
      p50: 4.2 + 0.6 * wave + 0.4 * this.noise(),
      p95: 17 + 3 * wave + 1.5 * this.noise(),
      p99: spike ? 92 + 6 * this.noise() : 33 + 5 * wave + 3 * this.noise(),
      errorRate: Math.max(0, 0.004 + 0.0025 * this.noise()),
      activeConnections: Math.round(124 + 18 * wave + 4 * this.noise()),
      memoryBytes: (71 + 7 * slow + 0.8 * this.noise()) * MB,
      eventLoopDelayMs: 1.9 + 0.7 * Math.abs(this.noise()),
      workerUtilization: Math.min(1, 0.63 + 0.12 * wave + 0.04 * this.noise()),
      // The pool's queue gauge only appears once the pool has started: a gap, not zeros.
      queueDepth: ageS > 270 && ageS < 300 ? Number.NaN : Math.max(0, Math.round(5 + 3 * wave + 2 * this.noise())),
      cacheHitRatio: 0.91 + 0.03 * slow + 0.01 * this.noise(),
      backpressure: Math.max(0, 2.2 + 1.5 * wave + this.noise()),
    };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.advance(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One tick: a simulated second passes, history grows, listeners hear of it. */
  advance(): void {
    this.now += 1000;
    this.last = this.pointAt(this.now);
    this.requests += Math.round(this.last.rps);
    this.errors.UNAVAILABLE += this.noise() > 0.6 ? 1 : 0;
    this.ticks.push(this.now, this.last);
    if (this.now % 60_000 === 0) this.minutes.push(this.now - 60_000, this.pointAt(this.now - 30_000));
    const frame = this.current();
    for (const listener of this.listeners) listener(frame);
  }

  current(): DashboardFrame {
    const p = this.last;
    const share = (k: number, name: string): SeriesRow => ({
      labels: { grpc_method: name },
      requests: Math.round(this.requests * k),
      rps: p.rps * k,
      p50: p.p50 * (0.8 + k),
      p95: p.p95 * (0.8 + k),
      p99: p.p99 * (0.8 + k),
      errorRate: p.errorRate * (1 + k),
    });
    const successRate = 1 - p.errorRate;
    const memoryMb = p.memoryBytes / MB;
    const comparison = {
      throughputAchievement: p.rps / 2000,
      latencyAchievement: Math.min(1, 25 / p.p95),
      memoryEfficiency: Math.min(1, 100 / memoryMb),
      successRate: successRate / 0.99,
      overallScore: 0,
      meetsTargets: false,
    };
    comparison.overallScore =
      (Math.min(1, comparison.throughputAchievement) +
        comparison.latencyAchievement +
        comparison.memoryEfficiency +
        Math.min(1, comparison.successRate)) /
      4;
    comparison.meetsTargets = comparison.overallScore >= 1;
    return {
      t: this.now,
      point: { ...p },
      summary: {
        totalRequests: 0,
        successfulRequests: 0,
        failedRequests: 0,
        errorsByType: {},
        throughputRps: p.rps,
        avgLatencyMs: p.p50 * 1.3,
        p50LatencyMs: p.p50,
        p95LatencyMs: p.p95,
        p99LatencyMs: p.p99,
        p999LatencyMs: p.p99 * 1.9,
        successRate,
        memoryUsageMb: memoryMb,
        activeConnections: p.activeConnections,
        workerUtilization: p.workerUtilization,
        cacheEfficiency: p.cacheHitRatio,
        uptimeSeconds: 26 * 3600 + (this.now - T0) / 1000,
      },
      comparison,
      targets: { targetRps: 2000, targetP95LatencyMs: 25, targetMemoryMb: 100, targetSuccessRate: 0.99 },
      series: [
        share(0.55, 'Chat/Stream'),
        share(0.25, 'Chat/Send'),
        share(0.15, 'Feed/Subscribe'),
        share(0.05, HOSTILE_LABEL),
      ],
      anomalies: this.anomalies,
      errorsByType: { ...this.errors },
    };
  }

  history(resolution: Resolution, sinceMs?: number): HistoryColumns {
    const store = resolution === 'tick' ? this.ticks : resolution === 'minute' ? this.minutes : this.hours;
    return { ...store.since(resolution, sinceMs), anomalies: this.anomalies };
  }

  onTick(listener: (frame: DashboardFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

// ---------------------------------------------------------------------------------------------
// Harness: a loopback server with the handler, torn down whatever happens.

interface Harness {
  base: string;
  source: SyntheticSource;
  server: Server;
  requests: string[];
  eventSockets: Set<Socket>;
}

async function withServer(options: DashboardOptions, body: (h: Harness) => Promise<void>, tickMs = 0): Promise<void> {
  const source = new SyntheticSource();
  const handler = createDashboardHandler(source, options);
  const requests: string[] = [];
  const eventSockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url?.startsWith('/events')) eventSockets.add(req.socket);
    if (!handler(req, res)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not the dashboard');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  if (tickMs > 0) source.start(tickMs);
  try {
    await body({ base: `http://127.0.0.1:${port}`, source, server, requests, eventSockets });
  } finally {
    source.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function fetchBounded(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
}

/** A GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Opens an SSE stream and collects its text until `done(text)` holds (bounded). */
function readEvents(
  url: string,
  done: (text: string) => boolean,
  timeoutMs = 5000,
): Promise<{ res: IncomingMessage; text: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      let text = '';
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`SSE: timed out; got ${JSON.stringify(text.slice(0, 300))}`));
      }, timeoutMs);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
        if (done(text)) {
          clearTimeout(timer);
          resolve({ res, text, close: () => req.destroy() });
        }
      });
    });
    req.on('error', (e) => {
      if (!req.destroyed) reject(e);
    });
  });
}

function parseEvents(text: string): { event?: string; id?: string; data?: string; retry?: string; comment?: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const out: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) out.comment = line.slice(1).trim();
        else {
          const at = line.indexOf(':');
          out[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
        }
      }
      return out;
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP

test('page and assets are served with their types, nosniff and a content security policy', async () => {
  await withServer({}, async ({ base }) => {
    const page = await fetchBounded(`${base}/`);
    assert.is(page.status, 200);
    assert.is(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.is(page.headers.get('x-content-type-options'), 'nosniff');
    assert.match(page.headers.get('content-security-policy') ?? '', "script-src 'self'");
    const html = await page.text();
    assert.match(html, 'assets/uplot.js');
    assert.not.match(html, /https?:\/\//, 'no asset from another origin');

    const expected: Record<string, string> = {
      'app.js': 'text/javascript; charset=utf-8',
      'charts.js': 'text/javascript; charset=utf-8',
      'uplot.js': 'text/javascript; charset=utf-8',
      'style.css': 'text/css; charset=utf-8',
      'uplot.css': 'text/css; charset=utf-8',
    };
    for (const [name, type] of Object.entries(expected)) {
      const res = await fetchBounded(`${base}/assets/${name}`);
      assert.is(res.status, 200, name);
      assert.is(res.headers.get('content-type'), type, name);
      assert.is(res.headers.get('x-content-type-options'), 'nosniff', name);
      assert.ok((await res.arrayBuffer()).byteLength > 100, name);
    }
    assert.is((await fetchBounded(`${base}/assets/nope.js`)).status, 404);
  });
});

test('history: columns per resolution, since filters, NaN as null, never cached', async () => {
  await withServer({}, async ({ base, source }) => {
    for (const [resolution, count] of [
      ['tick', 300],
      ['minute', 60],
      ['hour', 24],
    ] as const) {
      const res = await fetchBounded(`${base}/api/history?resolution=${resolution}`);
      assert.is(res.status, 200);
      assert.is(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.is(res.headers.get('cache-control'), 'no-store');
      assert.is(res.headers.get('x-content-type-options'), 'nosniff');
      const body = (await res.json()) as HistoryColumns;
      assert.is(body.resolution, resolution);
      assert.is(body.t.length, count);
      for (const f of DASHBOARD_FIELDS) assert.is(body.fields[f].length, count, `${resolution} ${f}`);
    }
    const recent = (await (
      await fetchBounded(`${base}/api/history?resolution=tick&since=${source.now - 9_000}`)
    ).json()) as HistoryColumns;
    assert.is(recent.t.length, 10);
    assert.ok(recent.t.every((t) => t >= source.now - 9_000));
    const all = (await (await fetchBounded(`${base}/api/history`)).json()) as { fields: Record<string, unknown[]> };
    assert.is(all.fields.queueDepth[0], null, 'NaN travels as null (a gap)');
  });
});

test('bad query parameters are answered 400 with a message that says what is wrong', async () => {
  await withServer({}, async ({ base }) => {
    const cases: [string, RegExp][] = [
      ['/api/history?resolution=week', /resolution must be one of tick, minute, hour, day; got "week"/],
      ['/api/history?since=yesterday', /since must be a time in ms/],
      ['/api/history?since=-5', /since must be a time in ms/],
      ['/api/history?since=1e400', /since must be a time in ms/],
      [
        '/api/history?resolutoin=hour',
        /unknown query parameter "resolutoin" \(allowed: resolution, since, until, maxPoints\)/,
      ],
      ['/api/history?resolution=tick&resolution=hour', /"resolution" given more than once/],
      ['/api/current?x=1', /unknown query parameter "x"/],
    ];
    for (const [path, message] of cases) {
      const res = await fetchBounded(base + path);
      assert.is(res.status, 400, path);
      assert.is(res.headers.get('content-type'), 'application/json; charset=utf-8', path);
      const body = (await res.json()) as { error: string };
      assert.match(body.error, message, path);
    }
  });
});

test('methods, HEAD, foreign paths and path tricks', async () => {
  await withServer({}, async ({ base }) => {
    const post = await fetchBounded(`${base}/api/current`, { method: 'POST' });
    assert.is(post.status, 405);
    assert.is(post.headers.get('allow'), 'GET, HEAD');

    const head = await fetchBounded(`${base}/`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 500);
    assert.is(await head.text(), '');

    const metrics = await fetchBounded(`${base}/metrics`);
    assert.is(await metrics.text(), 'not the dashboard', 'other paths are left to the caller');

    for (const path of [
      '/assets/../package.json',
      '/assets/..%2fpackage.json',
      '/assets/%2e%2e/src/dashboard.ts',
      '/assets/sub/app.js',
    ]) {
      const res = await rawGet(base, path);
      assert.ok(res.status === 404, `${path} -> ${res.status}`);
      assert.not.match(res.body, '"name"', path);
    }
  });
});

test('JSON escapes markup: a hostile label round-trips but never appears raw', async () => {
  await withServer({}, async ({ base }) => {
    const text = await (await fetchBounded(`${base}/api/current`)).text();
    assert.not.match(text, '<img');
    assert.not.match(text, '<script');
    assert.match(text, '\\u003cimg src=x onerror=alert(1)\\u003e');
    const frame = JSON.parse(text) as DashboardFrame;
    assert.ok(frame.series.some((s) => s.labels.grpc_method === HOSTILE_LABEL));
    assert.is(frame.errorsByType[HOSTILE_ERROR], 5);
  });
});

test('SSE: retry hint, current frame, one tick event per tick, heartbeats, unsubscribe on close', async () => {
  await withServer({ heartbeatMs: 40, retryMs: 1500 }, async ({ base, source }) => {
    const stream = await readEvents(`${base}/events`, (text) => text.includes(': heartbeat'));
    try {
      assert.is(stream.res.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.is(stream.res.headers['cache-control'], 'no-store');
      assert.is(stream.res.headers['x-content-type-options'], 'nosniff');
      assert.is(source.listenerCount, 1);
      const first = parseEvents(stream.text);
      assert.is(first[0].retry, '1500');
      assert.is(first[1].event, 'tick', 'the current frame is sent at once');
      assert.is((JSON.parse(first[1].data ?? '') as DashboardFrame).t, source.now);
      assert.ok(
        first.some((e) => e.comment === 'heartbeat'),
        'a comment heartbeat',
      );

      // Ticks driven by hand: each becomes exactly one event, in order, on one data line.
      let more = '';
      stream.res.on('data', (chunk: string) => (more += chunk));
      const before = source.now;
      source.advance();
      source.advance();
      await until('two tick events', 5000, () => parseEvents(more).filter((e) => e.event === 'tick').length >= 2, 20);
      const ticks = parseEvents(more).filter((e) => e.event === 'tick');
      assert.equal(
        ticks.map((e) => Number(e.id)),
        [before + 1000, before + 2000],
      );
      for (const e of ticks) {
        const frame = JSON.parse(e.data ?? '') as DashboardFrame;
        assert.is(String(frame.t), e.id);
        assert.is(frame.series.length, 4);
      }
    } finally {
      stream.close();
    }
    await until('the source to be unsubscribed', 5000, () => source.listenerCount === 0, 20);
  });
});

test('SSE: one source subscription for many clients; past maxClients, 503', async () => {
  await withServer({ maxClients: 2 }, async ({ base, source }) => {
    const a = await readEvents(`${base}/events`, (t) => t.includes('event: tick'));
    const b = await readEvents(`${base}/events`, (t) => t.includes('event: tick'));
    try {
      assert.is(source.listenerCount, 1);
      const third = await fetchBounded(`${base}/events`);
      assert.is(third.status, 503);
      assert.match(await third.text(), 'limit 2');
      a.close();
      // Once the server has seen the first client go, its place is free again.
      const c = await until(
        'a place freed by the client that left',
        5000,
        async () => {
          const r = await fetchBounded(`${base}/events`);
          if (r.status === 200) return r;
          await r.text();
          return undefined;
        },
        20,
      );
      assert.is(source.listenerCount, 1, 'still one subscription, for the two clients now listening');
      await c.body?.cancel();
    } finally {
      a.close();
      b.close();
    }
    await until('the source to be unsubscribed', 5000, () => source.listenerCount === 0, 20);
  });
});

test('basePath mounts everything under a prefix', async () => {
  await withServer({ basePath: '/dash/' }, async ({ base }) => {
    const bare = await fetchBounded(`${base}/dash`, { redirect: 'manual' });
    assert.is(bare.status, 308);
    assert.is(bare.headers.get('location'), '/dash/');
    assert.is((await fetchBounded(`${base}/dash/`)).headers.get('content-type'), 'text/html; charset=utf-8');
    assert.is((await fetchBounded(`${base}/dash/api/history?resolution=hour`)).status, 200);
    assert.is(await (await fetchBounded(`${base}/`)).text(), 'not the dashboard');
  });
});

test('options are validated with messages that say what to change', () => {
  const source = new SyntheticSource();
  assert.throws(
    () => createDashboardHandler(source, { heartbeatMs: 0 }),
    /options.heartbeatMs must be a positive number/,
  );
  assert.throws(() => createDashboardHandler(source, { maxClients: Number.NaN }), /options.maxClients/);
  assert.throws(() => createDashboardHandler(source, { basePath: 'dash' }), /options.basePath must be a URL path/);
});

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
