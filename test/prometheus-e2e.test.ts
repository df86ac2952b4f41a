// End to end with a real Prometheus (Debian's `prometheus` 2.42, started here on 127.0.0.1 with a
// temporary data dir, native histograms on, 1 s scrapes):
//   job "native":  this process's monitor.serve() — Prometheus negotiates protobuf, native histograms
//   job "classic": the same monitor in text format 0.0.4 (Prometheus 2.42 ignores the classic buckets
//                  of a protobuf histogram that has native ones, so they are checked from text)
//   job "fleet":   two monitors in two child processes (test/fixtures/expo-target.ts), scales 7 and 5
// (a) a bounded seeded load recorded while Prometheus scrapes: PromQL quantiles, counters and rate()
//     against the monitor's own figures and the exact values;
// (b) the cross-instance p99 and totals from PromQL against mergeSnapshots of the two /snapshot.

import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketIndex, upperBound } from '../src/core/buckets.js';
import type { StreamPerformanceMonitor } from '../src/index.js';
import type { Served } from '../src/serve/serve.js';
import { mergeSnapshots, snapshotQuantile } from '../src/export/snapshot.js';
import {
  FLEET_ROUTES,
  jobsUp,
  type Op,
  type PrometheusServer,
  query,
  rateFactor,
  requirePrometheus,
  scalar,
  seededOps,
  sleep,
  spawnTarget,
  startPrometheus,
  stopProcess,
  waitFor,
} from './fixtures/expo-helpers.js';
import { exactQuantileOf } from './fixtures/quantiles.js';
import { testMonitor } from './fixtures/monitor.js';

const SCALE = 7;
const LOAD_SECONDS = 7;
const BATCH_EVERY_MS = 25;
const BATCH = 25; // 1000 requests/s
const ROUTE_A = 'Chat/Stream';
const ROUTE_B = 'Feed "live" ✓';
const FLEET = [
  { seed: 101, requests: 6000, scale: 7 },
  { seed: 202, requests: 4000, scale: 5 },
] as const;

// --- the environment, set up once, by the first test that needs it -----------------------------

interface Env {
  prom: PrometheusServer;
  monitor: StreamPerformanceMonitor;
  served: Served;
  fleet: Array<{ child: ChildProcess; port: number }>;
}

const cleanups: Array<() => Promise<unknown>> = [];
const children: ChildProcess[] = [];
let envPromise: Promise<Env> | undefined;

function env(): Promise<Env> {
  envPromise ??= setup();
  return envPromise;
}

async function setup(): Promise<Env> {
  requirePrometheus(); // fails with "apt-get install prometheus" when missing
  const monitor = testMonitor({ scale: SCALE });
  cleanups.push(async () => monitor.close());
  const served = await monitor.serve({ dashboard: false });
  cleanups.push(() => served.close());
  // The same monitor in text format 0.0.4, whatever the scraper asks for.
  const text = http.createServer((_req, res) => {
    const out = monitor.metrics('text/plain;version=0.0.4');
    res.writeHead(200, { 'content-type': out.contentType }).end(out.body);
  });
  await new Promise<void>((r) => text.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    text.closeAllConnections();
    await new Promise((r) => text.close(r));
  });
  const fleet = [];
  for (const t of FLEET) {
    const target = await spawnTarget([String(t.seed), String(t.requests), String(t.scale)]);
    children.push(target.child);
    cleanups.push(() => stopProcess(target.child));
    fleet.push(target);
  }
  const addr = (port: number) => `127.0.0.1:${port}`;
  const prom = await startPrometheus([
    { name: 'native', targets: [addr(served.port)] },
    { name: 'classic', targets: [addr((text.address() as AddressInfo).port)] },
    { name: 'fleet', targets: fleet.map((f) => addr(f.port)) },
  ]);
  children.push(prom.proc);
  cleanups.push(() => prom.stop());
  await waitFor(prom, 'a first successful scrape of every target', () =>
    jobsUp(prom.base, ['native', 'classic', 'fleet'], { fleet: 2 }),
  );
  return { prom, monitor, served, fleet };
}

test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
// Should the runner be interrupted, the child processes go too.
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

// --- helpers ------------------------------------------------------------------------------------

interface Batch {
  start: number;
  end: number;
  /** Requests recorded into route A so far, this batch included. */
  cumA: number;
}

/** Requests of route A surely visible at `t` (batches finished by then). */
function countDone(batches: Batch[], t: number): number {
  let n = 0;
  for (const b of batches) if (b.end <= t) n = b.cumA;
  return n;
}

/** Requests of route A possibly visible at `t` (batches begun by then). */
function countStarted(batches: Batch[], t: number): number {
  let n = 0;
  for (const b of batches) if (b.start <= t) n = b.cumA;
  return n;
}

/** The bucket (lower, upper] at `scale` that holds `seconds`, as the monitor indexes it. */
function bucketOf(seconds: number, scale: number): [number, number] {
  const i = bucketIndex(seconds, scale);
  return [upperBound(i - 1, scale), upperBound(i, scale)];
}

function within(v: number, [lo, hi]: [number, number], what: string): void {
  assert.ok(v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12), `${what}: ${v} outside (${lo}, ${hi}]`);
}

// --- (a) a live monitor under a known load ------------------------------------------------------

test('native and classic histogram_quantile, counters and rate() agree with the monitor under a live load', async () => {
  const { prom, monitor } = await env();
  const base = prom.base;
  const routes = [monitor.series({ route: ROUTE_A }), monitor.series({ route: ROUTE_B })];
  const ops: Op[] = seededOps(4242, (LOAD_SECONDS * 1000 * BATCH) / BATCH_EVERY_MS + 10 * BATCH, 2, 3);
  const batches: Batch[] = [];
  const recorded: number[] = [];
  const perRoute = [0, 0];
  const errors = new Map<string, number>(); // "route|type"
  // One observation past the resolved range (2 h): counted, in the native buckets too.
  routes[1].recordLatency(7_200_000);
  perRoute[1]++;
  recorded.push(7_200_000);
  // The load: BATCH requests every BATCH_EVERY_MS for LOAD_SECONDS, each batch's time span logged.
  let next = 0;
  const loadStart = Date.now();
  while (Date.now() - loadStart < LOAD_SECONDS * 1000 && next + BATCH <= ops.length) {
    const start = Date.now();
    for (let k = 0; k < BATCH; k++) {
      const op = ops[next++];
      if (op.error) {
        routes[op.route].recordError(op.error, op.ms);
        const key = `${op.route}|${op.error}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
      } else {
        routes[op.route].recordLatency(op.ms);
      }
      perRoute[op.route]++;
      recorded.push(op.ms);
    }
    batches.push({ start, end: Date.now(), cumA: perRoute[0] });
    await sleep(BATCH_EVERY_MS);
  }
  const loadEnd = Date.now();
  const total = recorded.length;
  assert.ok(
    loadEnd - loadStart >= LOAD_SECONDS * 1000,
    'the seeded ops outlast the load (the rate check needs all of it)',
  );

  // Until Prometheus holds the final state from both jobs.
  await waitFor(prom, 'the final counts in Prometheus', async () => {
    const [n, c, h] = await Promise.all([
      query(base, 'sum(streamgauge_requests_total{job="native"})'),
      query(base, 'sum(streamgauge_requests_total{job="classic"})'),
      query(base, 'histogram_count(sum(streamgauge_request_duration_seconds{job="native"}))'),
    ]);
    return [n, c, h].every((r) => Number(r[0]?.value?.[1]) === total);
  });

  // Counters: exact, in both formats.
  for (const job of ['native', 'classic']) {
    for (const [i, route] of [ROUTE_A, ROUTE_B].entries()) {
      const sel = `{job="${job}",route="${route.replace(/"/g, '\\"')}"}`;
      assert.is(await scalar(base, `streamgauge_requests_total${sel}`), perRoute[i], `${job} requests ${route}`);
      for (const [key, n] of errors) {
        const [r, type] = key.split('|');
        if (Number(r) !== i) continue;
        const esel = `{job="${job}",route="${route.replace(/"/g, '\\"')}",error_type="${type.replace(/\n/g, '\\n').replace(/"/g, '\\"')}"}`;
        assert.is(
          await scalar(base, `streamgauge_errors_total${esel}`),
          n,
          `${job} errors ${route} ${JSON.stringify(type)}`,
        );
      }
    }
  }

  // Native histogram (protobuf): count and sum exact, p99 in the bucket of the exact p99, and
  // within one bucket width of the monitor's own p99.
  const native = 'sum(streamgauge_request_duration_seconds{job="native"})';
  const ingested = await query(base, `streamgauge_request_duration_seconds{job="native",route="${ROUTE_A}"}`);
  assert.ok(ingested[0]?.histogram, 'the native job was ingested as a native histogram (protobuf)');
  assert.is(await scalar(base, `histogram_count(${native})`), total);
  const sum = await scalar(base, `histogram_sum(${native})`);
  assert.ok(Math.abs(sum - monitor.totals().latencySumMs / 1000) <= 1e-9 * sum, `native sum ${sum}`);
  const exact = exactQuantileOf(recorded, 0.99) * 1e-3;
  const own = monitor.quantileSinceStart(0.99) * 1e-3;
  const bucket = bucketOf(exact, SCALE);
  within(own, bucket, "the monitor's p99");
  const nativeP99 = await scalar(base, `histogram_quantile(0.99, ${native})`);
  within(nativeP99, bucket, 'PromQL native p99');
  assert.ok(Math.abs(nativeP99 / own - 1) <= 2 ** (1 / 2 ** SCALE) - 1, `native p99 ${nativeP99} vs monitor ${own}`);

  // Classic buckets (text format): +Inf = count, p99 inside the classic bucket holding the monitor's p99.
  const classicSel = 'streamgauge_request_duration_seconds_bucket{job="classic"}';
  const les = [...new Set((await query(base, classicSel)).map((s) => s.metric.le))]
    .filter((le) => le !== '+Inf')
    .map(Number)
    .sort((a, b) => a - b);
  assert.ok(les.length >= 10, `${les.length} classic boundaries`);
  assert.is(await scalar(base, `sum(${classicSel.replace('}', ',le="+Inf"}')})`), total);
  assert.is(await scalar(base, 'sum(streamgauge_request_duration_seconds_count{job="classic"})'), total);
  const k = les.findIndex((le) => own <= le);
  assert.ok(k > 0, `the p99 ${own} lies inside the classic ladder`);
  const classicP99 = await scalar(base, `histogram_quantile(0.99, sum by (le) (${classicSel}))`);
  within(classicP99, [les[k - 1], les[k]], 'PromQL classic p99');
  within(exact, [les[k - 1], les[k]], 'the exact p99 (same classic bucket)');

  // rate(): from samples inside the load, bounded by what was recorded between the scrapes'
  // timestamps and the end of each scrape.
  const T = (loadEnd - 500) / 1000;
  const W = 4;
  const selA = `streamgauge_requests_total{job="native",route="${ROUTE_A}"}`;
  const range = await query(base, `${selA}[${W}s]`, T);
  const points = (range[0]?.values ?? []).map(([t, v]) => [Number(t), Number(v)] as [number, number]);
  assert.ok(points.length >= 2, `need two samples in [T-${W}s, T], got ${points.length}`);
  const slowest = await scalar(base, `max_over_time(scrape_duration_seconds{job="native"}[${W}s])`, T);
  const late = slowest * 1000 + 25; // a scrape reads the counter at most this long after its timestamp
  const early = 5; // timestamp rounding
  for (const [t, v] of points) {
    const lo = countDone(batches, t * 1000 - early);
    const hi = countStarted(batches, t * 1000 + late);
    assert.ok(v >= lo && v <= hi, `sample at ${t}: ${v} outside the recorded [${lo}, ${hi}]`);
  }
  const promRate = await scalar(base, `rate(${selA}[${W}s])`, T);
  const times = points.map(([t]) => t);
  const [t1, v1] = points[0];
  const [t2, v2] = points[points.length - 1];
  const factor = rateFactor(times, v1, v2, T, W);
  const lo = (countDone(batches, t2 * 1000 - early) - countStarted(batches, t1 * 1000 + late)) * factor;
  const hi = (countStarted(batches, t2 * 1000 + late) - countDone(batches, t1 * 1000 - early)) * factor;
  assert.ok(
    promRate >= lo * (1 - 1e-9) && promRate <= hi * (1 + 1e-9),
    `rate() ${promRate}/s outside the recorded [${lo}, ${hi}]`,
  );
  assert.ok(promRate > 0);
});

// --- (b) two processes, two targets ---------------------------------------------------------------

test('two monitors in two processes: PromQL cross-instance p99 and totals match mergeSnapshots', async () => {
  const { prom, fleet } = await env();
  const base = prom.base;
  const snaps = await Promise.all(
    fleet.map(async (f) => {
      const res = await fetch(`http://127.0.0.1:${f.port}/snapshot`, { signal: AbortSignal.timeout(5000) });
      assert.is(res.status, 200);
      return new Uint8Array(await res.arrayBuffer());
    }),
  );
  const merged = mergeSnapshots(snaps);
  assert.is(merged.sources, 2);

  // What the children recorded, regenerated from their seeds.
  const ops = FLEET.flatMap((t) => seededOps(t.seed, t.requests, FLEET_ROUTES.length, 3));
  const total = ops.length;
  const mergedRequests = merged.series.reduce((n, s) => n + s.counters.requests, 0);
  assert.is(mergedRequests, total, 'merged requests = the sum of both');
  const mergedCount = merged.series.reduce((n, s) => n + s.latency.count, 0);
  assert.is(mergedCount, total);

  await waitFor(prom, 'both fleet targets in Prometheus', async () => {
    const r = await query(base, 'sum(streamgauge_requests_total{job="fleet"})');
    return Number(r[0]?.value?.[1]) === total;
  });
  const fleetSel = 'streamgauge_request_duration_seconds{job="fleet"}';
  assert.is(await scalar(base, `histogram_count(sum(${fleetSel}))`), mergedCount);
  for (const [i, route] of FLEET_ROUTES.entries()) {
    const want = ops.filter((o) => o.route === i).length;
    const s = merged.series.find((x) => x.labels.route === route);
    assert.is(s?.counters.requests, want, `merged ${route}`);
    const sel = `{job="fleet",route="${route.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"}`;
    assert.is(await scalar(base, `sum(streamgauge_requests_total${sel})`), want, `PromQL ${route}`);
  }
  const errorsByType = new Map<string, number>();
  for (const s of merged.series)
    for (const [t, n] of Object.entries(s.errorsByType)) errorsByType.set(t, (errorsByType.get(t) ?? 0) + n);
  const promErrors = await query(base, 'sum by (error_type) (streamgauge_errors_total{job="fleet"})');
  assert.equal(new Map(promErrors.map((s) => [s.metric.error_type, Number(s.value?.[1])])), errorsByType);
  assert.is(
    [...errorsByType.values()].reduce((a, b) => a + b, 0),
    ops.filter((o) => o.error).length,
  );

  // p99 across both instances: the merged snapshot's and PromQL's, in the same bucket of the
  // coarser scale (5) as the exact p99 of everything recorded.
  const coarse = Math.min(...FLEET.map((t) => t.scale));
  for (const s of merged.series) if (s.latency.count > 0) assert.is(s.latency.schema, coarse);
  const exact = exactQuantileOf(
    ops.map((o) => o.ms),
    0.99,
  );
  const bucket = bucketOf(exact * 1e-3, coarse);
  const mergedP99 = snapshotQuantile(merged, 0.99) * 1e-3;
  within(mergedP99, bucket, 'mergeSnapshots p99');
  const promP99 = await scalar(base, `histogram_quantile(0.99, sum(${fleetSel}))`);
  within(promP99, bucket, 'PromQL cross-instance p99');
  assert.ok(
    Math.abs(promP99 / mergedP99 - 1) <= 2 ** (1 / 2 ** coarse) - 1,
    `PromQL ${promP99} vs merged ${mergedP99}`,
  );
  // And per route.
  const byRoute = await query(base, `histogram_quantile(0.99, sum by (route) (${fleetSel}))`);
  for (const route of FLEET_ROUTES) {
    const p = Number(byRoute.find((s) => s.metric.route === route)?.value?.[1]);
    const m = snapshotQuantile(merged, 0.99, { route }) * 1e-3;
    const values = ops.filter((o) => FLEET_ROUTES[o.route] === route).map((o) => o.ms);
    const b = bucketOf(exactQuantileOf(values, 0.99) * 1e-3, coarse);
    within(p, b, `PromQL p99 ${route}`);
    within(m, b, `merged p99 ${route}`);
  }
});

test.run();
