// The dashboard of a whole cluster, served by the primary: real node:cluster workers, each with its
// own monitor, and one dashboard (and one /metrics with windowed figures) for all of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type ClusterDashboardFrame,
  clusterMetrics,
  decodeSnapshot,
  snapshotQuantile,
  type StreamPerformanceMonitor,
} from '../src/index.js';
import { launchChromium } from './fixtures/browser.js';
import { exited, fork, record, workers } from './fixtures/cluster.js';
import { points, watchPage } from './fixtures/dashboard-page.js';
import { ERROR_TYPES, FLEET_ROUTES, type Op, parseExposition, pick, seededOps } from './fixtures/expo-helpers.js';
import { until } from './fixtures/wait.js';
import { testMonitor } from './fixtures/monitor.js';

const INTERVAL_MS = 200;

/** /api/history's answer (NaN travels as null). */
interface HistoryColumns {
  t: number[];
  fields: Record<string, (number | null)[]>;
}

/** The same ops recorded into one monitor here: what the merge must equal. */
function reference(ops: Op[]): StreamPerformanceMonitor {
  const monitor = testMonitor();
  const routes = FLEET_ROUTES.map((route) => monitor.series({ route }));
  for (const op of ops) {
    if (op.error) routes[op.route].recordError(op.error, op.ms);
    else routes[op.route].recordLatency(op.ms);
  }
  return monitor;
}

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.is(res.status, 200, url);
  return (await res.json()) as T;
}

const current = (url: string) => json<ClusterDashboardFrame>(`${url}/api/current`);
const history = (url: string) => json<HistoryColumns>(`${url}/api/history?resolution=tick`);

/** The first frame whose totals hold `n` requests. */
const frameWith = (url: string, n: number) =>
  until(`the primary's dashboard to count ${n} requests`, 20_000, async () => {
    const f = await current(url);
    return f.summary.totalRequests === n ? f : undefined;
  });

/**
 * Requests (and failed ones) the history's points account for: each point's rate times its
 * interval (from the point before it), so the first point only opens the sum.
 */
function countedByHistory(h: HistoryColumns): { requests: number; failed: number; negative: number } {
  let requests = 0;
  let failed = 0;
  let negative = 0;
  for (let i = 1; i < h.t.length; i++) {
    const rps = h.fields.rps[i] ?? Number.NaN;
    const n = rps * ((h.t[i] - h.t[i - 1]) / 1000);
    if (rps < 0) negative++;
    requests += n;
    failed += n > 0 ? n * (h.fields.errorRate[i] ?? 0) : 0;
  }
  return { requests, failed, negative };
}

test("the primary's dashboard shows every worker's records: exact totals, merged quantiles, rates from successive samples", async () => {
  const metrics = clusterMetrics({ intervalMs: INTERVAL_MS });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const opsA = seededOps(11, 1200, FLEET_ROUTES.length, 4);
  const opsB = seededOps(12, 800, FLEET_ROUTES.length, 40);
  const all = [...opsA, ...opsB];
  const ref = reference(all);
  try {
    // Records made after the first point are all in the points that follow it.
    await until('a first point in the history', 20_000, async () => (await history(served.url)).t.length >= 1);
    await Promise.all([
      record(a, opsA, { connections: 3, utilization: 0.2 }),
      record(b, opsB, { connections: 2, utilization: 0.6 }),
    ]);
    const frame = await frameWith(served.url, all.length);

    const failed = all.filter((op) => op.error);
    assert.is(frame.summary.failedRequests, failed.length);
    for (const type of ERROR_TYPES)
      assert.is(frame.errorsByType[type] ?? 0, failed.filter((op) => op.error === type).length, type);
    for (const [i, route] of FLEET_ROUTES.entries()) {
      const row = frame.series.find((s) => s.labels.route === route);
      assert.is(row?.requests, all.filter((op) => op.route === i).length, route);
    }
    // Quantiles since start from the merged histogram: those of one monitor holding every record.
    const exact = decodeSnapshot(ref.snapshot());
    assert.is(frame.summary.p50LatencyMs, snapshotQuantile(exact, 0.5));
    assert.is(frame.summary.p95LatencyMs, snapshotQuantile(exact, 0.95));
    assert.is(frame.summary.p99LatencyMs, snapshotQuantile(exact, 0.99));
    assert.is(frame.summary.activeConnections, 5);
    assert.is(frame.summary.workerUtilization, 0.4);
    assert.equal(
      frame.workers.map((w) => [w.id, w.requests, w.activeConnections, w.state]),
      [
        [a.id, opsA.length, 3, 'live'],
        [b.id, opsB.length, 2, 'live'],
      ],
    );

    // The windowed figures: rate × interval over the points adds up to every request, and the
    // error ratio to every failure.
    const counted = countedByHistory(await history(served.url));
    assert.ok(Math.abs(counted.requests - all.length) < 1e-6, `${counted.requests} requests in the history's rates`);
    assert.ok(
      Math.abs(counted.failed - failed.length) < 1e-6,
      `${counted.failed} failures in the history's error ratios`,
    );

    // Reduced to one value, the history's error rate is every failure over every request.
    const one = await json<HistoryColumns & { pointsPerValue: number }>(
      `${served.url}/api/history?resolution=tick&maxPoints=1`,
    );
    assert.is(one.t.length, 1);
    assert.ok(one.pointsPerValue > 1);
    assert.is(one.fields.errorRate[0], failed.length / all.length);

    // /metrics carries what a monitor's carries: the rate and error ratio of the last interval, and the peak.
    const parsed = parseExposition(await (await fetch(`${served.url}/metrics`)).text());
    const rates = pick(parsed, 'streamgauge_requests_per_second');
    assert.ok(rates.length >= FLEET_ROUTES.length, 'a rate per series');
    assert.ok(rates.every((s) => s.value >= 0));
    assert.ok(pick(parsed, 'streamgauge_error_ratio').every((s) => s.value >= 0 && s.value <= 1));
    const peak = pick(parsed, 'streamgauge_peak_requests_per_second')[0]?.value ?? 0;
    assert.ok(peak * (INTERVAL_MS / 1000) > 0, 'a peak');
    assert.ok(pick(parsed, 'streamgauge_request_duration_window_seconds').length > 0, 'window quantiles');
  } finally {
    ref.close();
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test('a worker killed mid-run: its last counts stay, it is listed as exited, and no rate goes negative', async () => {
  const metrics = clusterMetrics({ intervalMs: INTERVAL_MS });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const opsA = seededOps(21, 700, FLEET_ROUTES.length, 4);
  const opsB1 = seededOps(22, 500, FLEET_ROUTES.length, 8);
  const opsB2 = seededOps(23, 600, FLEET_ROUTES.length, 8);
  try {
    await until('a first point in the history', 20_000, async () => (await history(served.url)).t.length >= 1);
    await Promise.all([record(a, opsA), record(b, opsB1)]);
    await frameWith(served.url, opsA.length + opsB1.length);
    a.kill('SIGKILL');
    await exited(a);
    await record(b, opsB2);
    const total = opsA.length + opsB1.length + opsB2.length;
    const frame = await frameWith(served.url, total);
    assert.equal(
      frame.workers.map((w) => [w.id, w.requests, w.state]),
      [
        [b.id, opsB1.length + opsB2.length, 'live'],
        [a.id, opsA.length, 'exited'],
      ],
    );
    const counted = countedByHistory(await history(served.url));
    assert.is(counted.negative, 0);
    assert.ok(Math.abs(counted.requests - total) < 1e-6, `${counted.requests} requests in the history's rates`);
  } finally {
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test('a closed minute on the primary holds its records exactly: the 1-hour range has points', async () => {
  // The primary's clock starts just past a minute's start, and is moved to the next minute once
  // the load is in: the next sample closes the minute.
  let offset = Math.ceil(Date.now() / 60_000) * 60_000 + 200 - Date.now();
  const clock = { now: () => Date.now() + offset };
  const metrics = clusterMetrics({ intervalMs: INTERVAL_MS, clock });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const opsA = seededOps(41, 900, FLEET_ROUTES.length, 4);
  const opsB = seededOps(42, 700, FLEET_ROUTES.length, 40);
  const all = [...opsA, ...opsB];
  const ref = reference(all);
  try {
    await Promise.all([record(a, opsA), record(b, opsB)]);
    await frameWith(served.url, all.length);
    assert.is(
      (await json<HistoryColumns>(`${served.url}/api/history?resolution=minute`)).t.length,
      0,
      'no minute closed yet',
    );
    offset += 60_000;
    const minute = await until('a closed minute', 20_000, async () => {
      const h = await json<HistoryColumns>(`${served.url}/api/history?resolution=minute`);
      return h.t.length > 0 ? h : undefined;
    });
    assert.is(minute.t.length, 1);
    assert.is(minute.t[0] % 60_000, 0, 'stamped with the end of its minute');
    const exact = decodeSnapshot(ref.snapshot());
    assert.is(minute.fields.p99[0], snapshotQuantile(exact, 0.99));
    assert.is(minute.fields.p50[0], snapshotQuantile(exact, 0.5));
    assert.is(minute.fields.errorRate[0], all.filter((op) => op.error).length / all.length);
  } finally {
    ref.close();
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test('bad sampling options are refused at creation, naming the option', () => {
  assert.throws(
    () => clusterMetrics({ intervalMs: 0 }),
    (e: Error) => e instanceof RangeError && /options\.intervalMs/.test(e.message),
  );
  assert.throws(
    () => clusterMetrics({ intervalMs: Number.NaN }),
    (e: Error) => e instanceof RangeError && /options\.intervalMs/.test(e.message),
  );
  assert.throws(
    () => clusterMetrics({ historyPoints: 1.5 }),
    (e: Error) => e instanceof RangeError && /options\.historyPoints/.test(e.message),
  );
  assert.throws(
    () => clusterMetrics({ targets: { targetRps: -1 } }),
    (e: Error) => e instanceof RangeError && /targets\.targetRps/.test(e.message),
  );
});

test('dashboard: false serves no page, and /metrics then has no windowed figures (nothing samples the workers)', async () => {
  const metrics = clusterMetrics({ intervalMs: INTERVAL_MS });
  const served = await metrics.serve({ dashboard: false });
  try {
    assert.is((await fetch(`${served.url}/`)).status, 404);
    assert.is((await fetch(`${served.url}/api/current`)).status, 404);
    const text = await (await fetch(`${served.url}/metrics`)).text();
    assert.ok(text.includes('streamgauge_cluster_workers'));
    assert.not.ok(text.includes('streamgauge_requests_per_second'));
  } finally {
    metrics.close();
    await served.close();
  }
});

test("Chromium opens the primary's dashboard and shows the merged figures and the workers", async () => {
  const metrics = clusterMetrics({ intervalMs: INTERVAL_MS });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const opsA = seededOps(31, 900, FLEET_ROUTES.length, 4);
  const opsB = seededOps(32, 600, FLEET_ROUTES.length, 40);
  const all = [...opsA, ...opsB];
  const browser = await launchChromium();
  try {
    const { page } = browser;
    const seen = watchPage(page);
    await page.goto(`${served.url}/`);
    await page.waitForSelector('body[data-loaded="5m"]');
    await Promise.all([record(a, opsA), record(b, opsB)]);
    const frame = await frameWith(served.url, all.length);

    // The series table: each route's requests summed over both workers.
    const text = (selector: string) =>
      page.$$eval(selector, (rows) => rows.map((r) => (r.textContent ?? '').replace(/\s+/g, ' ').trim()));
    for (const [i, route] of FLEET_ROUTES.entries()) {
      const n = all.filter((op) => op.route === i).length.toLocaleString('en-US');
      await page.waitForFunction(
        ([route, n]) =>
          Array.from(document.querySelectorAll('#series tbody tr')).some(
            (r) => r.textContent?.includes(route) && r.children[1]?.textContent === n,
          ),
        [route, n] as const,
      );
    }
    // The workers panel: both, live, with their own requests.
    await page.waitForFunction(
      (n) =>
        Array.from(document.querySelectorAll('#workers tbody tr')).filter((r) => r.textContent?.includes('live'))
          .length === n,
      2,
    );
    const rows = await text('#workers tbody tr');
    assert.ok(
      rows.some((r) => r.includes(opsA.length.toLocaleString('en-US'))),
      rows.join(' | '),
    );
    assert.ok(
      rows.some((r) => r.includes(opsB.length.toLocaleString('en-US'))),
      rows.join(' | '),
    );
    assert.not.ok(await page.$eval('#workers-panel', (el) => (el as HTMLElement).hidden));
    // The summary: the merged p99 (the exact one of every record), never an average of the workers'.
    const p99 = await page.$eval(
      '#summary tbody',
      (el) =>
        Array.from(el.querySelectorAll('tr')).find((r) => r.textContent?.startsWith('Latency p99'))?.textContent ?? '',
    );
    const shown = (v: number) =>
      v < 1
        ? v.toPrecision(2)
        : v >= 1000 || Number.isInteger(v)
          ? Math.round(v).toLocaleString('en-US')
          : v >= 99.95
            ? v.toFixed(0)
            : v >= 10
              ? v.toFixed(1)
              : v.toFixed(2).replace(/\.?0+$/, '');
    assert.ok(p99.includes(shown(frame.summary.p99LatencyMs)), `${p99} shows p99 ${frame.summary.p99LatencyMs}`);
    // The throughput chart (rps) draws the primary's points.
    await page.waitForFunction(
      () => Number((document.querySelector('[data-chart="rps"]') as HTMLElement | null)?.dataset.points ?? 0) >= 2,
    );
    assert.ok((await points(page, 'rps')) >= 2);
    assert.equal(seen.problems, []);
  } finally {
    await browser.close();
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test.run();
