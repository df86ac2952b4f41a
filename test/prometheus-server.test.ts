// End to end: a real Prometheus (Debian's `prometheus` 2.42) scrapes our exposition from a local
// HTTP server in all three formats, and PromQL must see exactly what we exposed.
//   job "proto": the Accept header Prometheus sends (protobuf, native histograms)
//   job "om":    OpenMetrics text;   job "text": text format 0.0.4 (both carry the classic buckets)

import { upperBound } from '../src/buckets.js';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { negotiate, render } from '../src/exposition.js';
import type { MetricFamily, NativeHistogram } from '../src/metric-families.js';
import { jobsUp, type PrometheusServer, query, scalar, startPrometheus, waitFor } from './fixtures/expo-helpers.js';
import { exactQuantileOf } from './fixtures/quantiles.js';
import { lognormal, seededRandom } from './fixtures/random.js';

const SCHEMA = 7;
const ZERO_THRESHOLD = 1e-6; // 1 µs
const RANGE_TOP = 3600; // 1 h
const BOUNDARIES = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HOSTILE = [
  'plain',
  'quote " inside',
  'back\\slash \\n not a newline',
  'new\nline',
  '<script>alert("x")</script>',
  'ünïcødé ✓ 😀 日本',
  'tab\tcarriage\rreturn',
];
const WAIT_MS = 40_000; // Prometheus starts scraping after its first discovery reload (~5 s)

// --- known contents -----------------------------------------------------------------------------

/** Lognormal latencies in seconds (median ~4 ms), plus a few in the zero bucket and the overflow. */
function latencies(seed: number, n: number): number[] {
  const random = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(lognormal(random, 0.004, 1.1));
  out.push(5e-7, 2e-7, 4000, 7200);
  return out;
}

function bucketIndex(v: number): number {
  return Math.ceil(Math.log2(v) * 2 ** SCHEMA);
}

function toNative(values: number[]): NativeHistogram {
  const counts = new Map<number, number>();
  let zeroCount = 0;
  let overflowCount = 0;
  let sum = 0;
  for (const v of values) {
    sum += v;
    if (v <= ZERO_THRESHOLD) zeroCount++;
    else if (v > RANGE_TOP) overflowCount++;
    else counts.set(bucketIndex(v), (counts.get(bucketIndex(v)) ?? 0) + 1);
  }
  const buckets = [...counts].sort((a, b) => a[0] - b[0]).map(([index, count]) => ({ index, count }));
  return {
    count: values.length,
    sum,
    schema: SCHEMA,
    zeroThreshold: ZERO_THRESHOLD,
    zeroCount,
    buckets,
    overflowCount,
    overflowThreshold: RANGE_TOP,
  };
}

/** PromQL's classic histogram_quantile, applied to the buckets as we expose them. */
function classicQuantile(q: number, bounds: number[], counts: number[], total: number): number {
  const rank = q * total;
  let prev = 0;
  for (let k = 0; k < bounds.length; k++) {
    if (counts[k] >= rank) {
      const lower = k === 0 ? 0 : bounds[k - 1];
      return lower + (bounds[k] - lower) * ((rank - prev) / (counts[k] - prev));
    }
    prev = counts[k];
  }
  return bounds[bounds.length - 1];
}

const valuesA = latencies(42, 20_000);
const valuesB = latencies(7, 5_000).map((v) => v * 3);
const nativeA = toNative(valuesA);
const nativeB = toNative(valuesB);
const BIG: NativeHistogram = {
  // counts past 2^32: varints and zigzag deltas beyond 32 bits
  count: 12_000_000_010,
  sum: 1e9,
  schema: SCHEMA,
  zeroThreshold: ZERO_THRESHOLD,
  zeroCount: 0,
  buckets: [
    { index: -500, count: 5_000_000_000 },
    { index: -499, count: 3 },
    { index: -400, count: 7_000_000_007 },
  ],
  overflowCount: 0,
};
const EMPTY: NativeHistogram = {
  count: 0,
  sum: 0,
  schema: SCHEMA,
  zeroThreshold: ZERO_THRESHOLD,
  zeroCount: 0,
  buckets: [],
  overflowCount: 0,
};

const families: MetricFamily[] = [
  {
    name: 'e2e_requests',
    help: 'Requests handled, by method.',
    type: 'counter',
    metrics: HOSTILE.map((method, i) => ({ labels: { method }, value: 1000 + i })),
  },
  { name: 'e2e_big', help: 'A counter past 2^53.', type: 'counter', metrics: [{ labels: {}, value: 2 ** 60 }] },
  {
    name: 'e2e_memory_bytes',
    help: 'Memory in use.',
    type: 'gauge',
    unit: 'bytes',
    metrics: [{ labels: {}, value: 123_456_789 }],
  },
  {
    name: 'e2e_latency_seconds',
    help: 'Request latency.',
    type: 'histogram',
    unit: 'seconds',
    metrics: [
      { labels: { method: 'a' }, histogram: nativeA },
      { labels: { method: 'b' }, histogram: nativeB },
      { labels: { method: 'big' }, histogram: BIG },
      { labels: { method: 'empty' }, histogram: EMPTY },
    ],
  },
  {
    name: 'e2e_window_seconds',
    help: 'Windowed latency quantiles.',
    type: 'summary',
    metrics: [
      {
        labels: {},
        summary: {
          count: 10,
          sum: 2.5,
          quantiles: [
            { quantile: 0.5, value: 0.125 },
            { quantile: 0.99, value: 0.75 },
          ],
        },
      },
    ],
  },
];

// --- harness ------------------------------------------------------------------------------------

interface Served {
  accept: string;
  contentType: string;
}

function startTarget(seen: Map<string, Served>): Promise<http.Server> {
  const forced: Record<string, string> = {
    '/om': 'application/openmetrics-text;version=1.0.0',
    '/text': 'text/plain;version=0.0.4',
  };
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const accept = path === '/metrics' ? (req.headers.accept ?? '') : forced[path];
    if (accept === undefined) {
      res.writeHead(404).end();
      return;
    }
    try {
      const { contentType, body } = render(families, { accept, classicBoundariesSeconds: BOUNDARIES });
      seen.set(path, { accept: req.headers.accept ?? '', contentType });
      res.writeHead(200, { 'content-type': contentType }).end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// --- the test -----------------------------------------------------------------------------------

test('a real Prometheus scrapes protobuf (native), OpenMetrics and text 0.0.4 exactly', async () => {
  const seen = new Map<string, Served>();
  let target: http.Server | undefined;
  let prom: PrometheusServer | undefined;
  try {
    target = await startTarget(seen);
    const targetAddr = `127.0.0.1:${(target.address() as net.AddressInfo).port}`;
    prom = await startPrometheus([
      { name: 'proto', path: '/metrics', targets: [targetAddr] },
      { name: 'om', path: '/om', targets: [targetAddr] },
      { name: 'text', path: '/text', targets: [targetAddr] },
    ]);
    const base = prom.base;
    // Every job scraped successfully with its samples queryable; a rejected scrape fails at once.
    await waitFor(prom, 'a complete scrape of every job', () => jobsUp(base, ['proto', 'om', 'text']), WAIT_MS);

    // Negotiation: Prometheus asked for protobuf on /metrics and got it.
    const proto = seen.get('/metrics');
    assert.ok(proto, 'the proto job scraped /metrics');
    assert.match(
      proto.accept,
      /^application\/vnd\.google\.protobuf;proto=io\.prometheus\.client\.MetricFamily;encoding=delimited,/,
    );
    assert.is(negotiate(proto.accept).format, 'protobuf');
    assert.match(
      proto.contentType,
      /^application\/vnd\.google\.protobuf; proto=io\.prometheus\.client\.MetricFamily; encoding=delimited/,
    );
    assert.match(seen.get('/om')?.contentType ?? '', /^application\/openmetrics-text; version=1\.0\.0/);
    assert.match(seen.get('/text')?.contentType ?? '', /^text\/plain; version=0\.0\.4/);

    for (const j of ['proto', 'om', 'text']) {
      // Counters exactly, and hostile label values back byte for byte.
      const requests = await query(base, `streamgauge_e2e_requests_total{job="${j}"}`);
      const got = new Map(requests.map((s) => [s.metric.method, Number(s.value?.[1])]));
      assert.equal([...got.keys()].sort(), [...HOSTILE].sort(), `${j}: label values round-trip`);
      for (let i = 0; i < HOSTILE.length; i++) {
        assert.is(got.get(HOSTILE[i]), 1000 + i, `${j}: counter ${JSON.stringify(HOSTILE[i])}`);
      }
      assert.is(await scalar(base, `streamgauge_e2e_big_total{job="${j}"}`), 2 ** 60, `${j}: big counter`);
      assert.is(await scalar(base, `streamgauge_e2e_memory_bytes{job="${j}"}`), 123_456_789, `${j}: gauge`);
      assert.is(
        await scalar(base, `streamgauge_e2e_window_seconds{job="${j}",quantile="0.99"}`),
        0.75,
        `${j}: summary`,
      );
      assert.is(await scalar(base, `streamgauge_e2e_window_seconds_count{job="${j}"}`), 10, `${j}: summary count`);
    }

    const cases: Array<[string, number[], NativeHistogram]> = [
      ['a', valuesA, nativeA],
      ['b', valuesB, nativeB],
    ];
    for (const [method, values, native] of cases) {
      const exact = exactQuantileOf(values, 0.99);
      const i = bucketIndex(exact);
      const lower = 2 ** ((i - 1) / 2 ** SCHEMA);
      const upper = 2 ** (i / 2 ** SCHEMA);

      // Native histogram (protobuf): count and sum exact, p99 inside the exact p99's native bucket.
      const sel = `streamgauge_e2e_latency_seconds{job="proto",method="${method}"}`;
      assert.is(await scalar(base, `histogram_count(${sel})`), native.count, `${method}: native count`);
      assert.is(await scalar(base, `histogram_sum(${sel})`), native.sum, `${method}: native sum`);
      const nativeP99 = await scalar(base, `histogram_quantile(0.99, ${sel})`);
      assert.ok(
        nativeP99 >= lower * (1 - 1e-12) && nativeP99 <= upper * (1 + 1e-12),
        `${method}: native p99 ${nativeP99} outside the bucket (${lower}, ${upper}] of the exact p99 ${exact}`,
      );
      assert.ok(Math.abs(nativeP99 / exact - 1) <= 2 ** (1 / 128) - 1, `${method}: native p99 relative error`);

      // Classic buckets (OpenMetrics and text): PromQL's answer is exactly the interpolation over
      // our cumulative counts, and lies in the classic bucket holding the exact p99.
      const bounds: number[] = [];
      const counts: number[] = [];
      for (const b of BOUNDARIES) {
        const snapped = upperBound(Math.round(Math.log2(b) * 2 ** SCHEMA), SCHEMA); // the core's own boundary
        bounds.push(snapped);
        counts.push(values.filter((v) => v <= snapped).length);
      }
      const expected = classicQuantile(0.99, bounds, counts, values.length);
      const k = bounds.findIndex((b) => exact <= b);
      for (const j of ['om', 'text']) {
        const buckets = `streamgauge_e2e_latency_seconds_bucket{job="${j}",method="${method}"}`;
        const inf = await scalar(base, `${buckets.slice(0, -1)},le="+Inf"}`);
        assert.is(inf, values.length, `${j}/${method}: +Inf bucket = count`);
        const series = await query(base, buckets);
        assert.is(series.length, BOUNDARIES.length + 1, `${j}/${method}: one series per boundary plus +Inf`);
        for (const s of series) {
          if (s.metric.le === '+Inf') continue;
          const at = bounds.indexOf(Number(s.metric.le));
          assert.ok(at >= 0, `${j}/${method}: le=${s.metric.le} is a snapped boundary`);
          assert.is(Number(s.value?.[1]), counts[at], `${j}/${method}: cumulative count at le=${s.metric.le}`);
        }
        const classicP99 = await scalar(base, `histogram_quantile(0.99, ${buckets})`);
        assert.ok(Math.abs(classicP99 - expected) <= 1e-12 * expected, `${j}/${method}: ${classicP99} vs ${expected}`);
        assert.ok(
          classicP99 > (k === 0 ? 0 : bounds[k - 1]) && classicP99 <= bounds[k],
          `${j}/${method}: classic p99 ${classicP99} outside the classic bucket of the exact p99 ${exact}`,
        );
        assert.is(
          await scalar(base, `streamgauge_e2e_latency_seconds_count{job="${j}",method="${method}"}`),
          values.length,
        );
      }
    }

    // Counts past 2^32 and an empty native histogram.
    const big = `streamgauge_e2e_latency_seconds{job="proto",method="big"}`;
    assert.is(await scalar(base, `histogram_count(${big})`), BIG.count, 'big native count');
    const empty = `streamgauge_e2e_latency_seconds{job="proto",method="empty"}`;
    assert.is(await scalar(base, `histogram_count(${empty})`), 0, 'empty native histogram is ingested as native');
  } finally {
    await prom?.stop();
    if (target) {
      target.closeAllConnections();
      await new Promise((r) => target?.close(r));
    }
  }
});

test.run();
